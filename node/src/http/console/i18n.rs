//! The console's words in English and Russian. Shared phrases live in [`T`]; a phrase used once
//! is written where it is used, with [`Lang::pick`].

/// The visitor's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// The phrase in this language.
    pub fn pick(self, en: &'static str, ru: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }
}

macro_rules! phrases {
    ($($name:ident => $en:literal, $ru:literal;)*) => {
        /// A phrase the console uses in more than one place.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($name),* }

        impl T {
            pub fn get(self, lang: Lang) -> &'static str {
                match self { $(T::$name => lang.pick($en, $ru)),* }
            }
        }
    };
}

phrases! {
    Console => "ArtStore console", "Консоль ArtStore";
    Dashboard => "Dashboard", "Обзор";
    Files => "Files", "Файлы";
    Accounts => "Service accounts", "Сервисные аккаунты";
    Keys => "Signing keys", "Ключи подписи";
    Audit => "Audit log", "Журнал аудита";
    Cluster => "Cluster", "Кластер";
    SignIn => "Sign in", "Войти";
    SignOut => "Sign out", "Выйти";
    ClientId => "Client id", "Идентификатор клиента";
    ClientSecret => "Client secret", "Секрет клиента";
    SignInHint => "Sign in with a service account. A new node prints the bootstrap admin's credentials once and keeps them in admin-credentials.json in its data folder.",
        "Войдите сервисным аккаунтом. Новый узел один раз печатает учётные данные администратора и хранит их в admin-credentials.json в папке данных.";
    SignInFailed => "The client id or secret is wrong, or the account is disabled.", "Неверный идентификатор или секрет, или аккаунт отключён.";
    SignInIncomplete => "Give a client id and a secret.", "Укажите идентификатор и секрет.";
    TooManyAttempts => "Too many attempts; wait and try again", "Слишком много попыток; подождите и повторите";
    NeedsTls => "The console signs people in, so off loopback it is served only over HTTPS: configure [http.tls].",
        "Консоль принимает секреты, поэтому вне loopback она работает только по HTTPS: настройте [http.tls].";
    CsrfMissing => "The form carried no CSRF token; reload the page and try again.", "В форме нет CSRF-токена; обновите страницу и повторите.";
    CsrfInvalid => "The form's CSRF token is not this session's; reload the page and try again.", "CSRF-токен формы не от этой сессии; обновите страницу и повторите.";
    NotFound => "Not found", "Не найдено";
    Error => "Error", "Ошибка";
    Back => "Back", "Назад";
    Cancel => "Cancel", "Отмена";
    Save => "Save", "Сохранить";
    Delete => "Delete", "Удалить";
    Name => "Name", "Имя";
    Description => "Description", "Описание";
    Tags => "Tags", "Теги";
    Size => "Size", "Размер";
    Type => "Type", "Тип";
    Created => "Created", "Создан";
    Node => "Node", "Узел";
    Nodes => "Nodes", "Узлы";
    Role => "Role", "Роль";
    Roles => "Roles", "Роли";
    Mode => "Mode", "Режим";
    Zone => "Zone", "Зона";
    Capacity => "Capacity", "Ёмкость";
    StorageElements => "Storage elements", "Элементы хранения";
    Priority => "Priority", "Приоритет";
    Reachable => "Reachable", "Доступен";
    Yes => "yes", "да";
    No => "no", "нет";
    Enabled => "Enabled", "Включён";
    Search => "Search", "Найти";
    Upload => "Upload", "Загрузить";
    Download => "Download", "Скачать";
    Time => "Time", "Время";
    Actor => "Actor", "Кто";
    Action => "Action", "Действие";
    Target => "Target", "Объект";
    Outcome => "Outcome", "Итог";
    NextPage => "Next page", "Следующая страница";
    FirstPage => "First page", "Первая страница";
    Skip => "Skip to content", "К содержимому";
    Language => "Language", "Язык";
    Done => "Done.", "Готово.";
}
