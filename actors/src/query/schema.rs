//! The index's schema, its English/Russian analyzer, and how a file record becomes a document.

use std::borrow::Cow;

use artstore_raft::FileRecord;
use frostem::{Algorithm, Stemmer};
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};
use tantivy::{Index, TantivyDocument};

/// Bumped whenever the schema or the analyzer changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the analyzer for free text.
pub const ANALYZER: &str = "artstore_text";

/// The fields, resolved once.
#[derive(Clone, Copy)]
pub struct Fields {
    pub id: Field,
    /// The UUID as two halves: the total order that breaks ties between equal sort keys.
    pub id_hi: Field,
    pub id_lo: Field,
    pub name: Field,
    pub description: Field,
    pub tags: Field,
    pub attributes: Field,
    pub tag: Field,
    pub content_type: Field,
    pub size: Field,
    pub created_at: Field,
    pub name_sort: Field,
    pub attr: Field,
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        name: b.add_text_field("name", text.clone()),
        description: b.add_text_field("description", text.clone()),
        tags: b.add_text_field("tags", text.clone()),
        attributes: b.add_text_field("attributes", text),
        tag: b.add_text_field("tag", STRING),
        content_type: b.add_text_field("content_type", STRING),
        size: b.add_u64_field("size", INDEXED | FAST),
        created_at: b.add_i64_field("created_at", INDEXED | FAST),
        name_sort: b.add_text_field("name_sort", STRING | FAST),
        attr: b.add_json_field("attr", JsonObjectOptions::from(STRING | FAST)),
    };
    (b.build(), fields)
}

/// Registers the analyzer on `index` (it is not persisted with the index).
pub fn register_analyzer(index: &Index) {
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(BilingualStemmer)
        .build();
    index.tokenizers().register(ANALYZER, analyzer);
}

/// The UUID of a file id as (high, low) halves; ids that are not UUIDs hash into the low half.
pub fn id_halves(id: &str) -> (u64, u64) {
    match uuid::Uuid::parse_str(id) {
        Ok(u) => {
            let v = u.as_u128();
            ((v >> 64) as u64, v as u64)
        }
        Err(_) => {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
            (0, u64::from_be_bytes(digest[..8].try_into().unwrap_or_default()))
        }
    }
}

/// Every scalar inside a JSON value, as text (for free-text search over attribute values).
fn scalars(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Bool(b) => out.push(b.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| scalars(v, out)),
        serde_json::Value::Object(m) => m.values().for_each(|v| scalars(v, out)),
        serde_json::Value::Null => {}
    }
}

pub fn document(f: &Fields, file: &FileRecord) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    let (hi, lo) = id_halves(&file.id);
    doc.add_text(f.id, &file.id);
    doc.add_u64(f.id_hi, hi);
    doc.add_u64(f.id_lo, lo);
    doc.add_text(f.name, &file.name);
    doc.add_text(f.name_sort, file.name.to_lowercase());
    doc.add_text(f.description, &file.description);
    for tag in &file.tags {
        doc.add_text(f.tags, tag);
        doc.add_text(f.tag, tag);
    }
    doc.add_text(f.content_type, file.content_type.to_lowercase());
    doc.add_u64(f.size, file.size);
    doc.add_i64(f.created_at, file.created_at);
    if let Ok(serde_json::Value::Object(attrs)) = serde_json::from_str::<serde_json::Value>(&file.attributes_json) {
        let mut text = Vec::new();
        attrs.values().for_each(|v| scalars(v, &mut text));
        for t in text {
            doc.add_text(f.attributes, t);
        }
        doc.add_field_value(f.attr, &tantivy::schema::OwnedValue::from(serde_json::Value::Object(attrs)));
    }
    doc
}

/// Stems Cyrillic words with the Russian Snowball stemmer and everything else with the English one,
/// so one field serves documents and queries in either language (and both mixed in one name).
/// `ё` is folded to `е` first, as Russian text often writes one for the other.
#[derive(Clone, Copy)]
pub struct BilingualStemmer;

impl TokenFilter for BilingualStemmer {
    type Tokenizer<T: Tokenizer> = BilingualStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> BilingualStemmerFilter<T> {
        BilingualStemmerFilter { inner }
    }
}

#[derive(Clone)]
pub struct BilingualStemmerFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for BilingualStemmerFilter<T> {
    type TokenStream<'a> = BilingualStemmerStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        BilingualStemmerStream {
            tail: self.inner.token_stream(text),
            english: Stemmer::new(Algorithm::English),
            russian: Stemmer::new(Algorithm::Russian),
        }
    }
}

pub struct BilingualStemmerStream<T> {
    tail: T,
    english: Stemmer,
    russian: Stemmer,
}

fn is_cyrillic(c: char) -> bool {
    ('\u{0400}'..='\u{04FF}').contains(&c)
}

impl<T: TokenStream> TokenStream for BilingualStemmerStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        let stemmed = if token.text.chars().any(is_cyrillic) {
            let folded = token.text.replace('ё', "е");
            match self.russian.stem(&folded) {
                Cow::Owned(s) => s,
                Cow::Borrowed(s) => s.to_string(),
            }
        } else {
            match self.english.stem(&token.text) {
                Cow::Owned(s) => s,
                Cow::Borrowed(s) if s.len() == token.text.len() => return true,
                Cow::Borrowed(s) => s.to_string(),
            }
        };
        token.text = stemmed;
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let (schema, _) = schema();
        let index = Index::create_in_ram(schema);
        register_analyzer(&index);
        let mut analyzer = index.tokenizers().get(ANALYZER).unwrap();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn russian_and_english_words_stem_to_shared_roots() {
        assert_eq!(tokens("документы"), tokens("документ"));
        assert_eq!(tokens("Документов"), tokens("документ"));
        assert_eq!(tokens("reports"), tokens("report"));
        assert_eq!(tokens("Archiving"), tokens("archive"));
        assert_eq!(tokens("ёлка"), tokens("елка"));
        // Mixed text keeps both languages apart.
        assert_eq!(tokens("Отчёты reports 2024"), vec![tokens("отчет")[0].clone(), "report".into(), "2024".into()]);
    }

    #[test]
    fn uuid_halves_order_like_the_uuid() {
        let a = id_halves("018f0000-0000-7000-8000-000000000001");
        let b = id_halves("018f0000-0000-7000-8000-000000000002");
        assert!(a < b);
        assert_ne!(id_halves("not-a-uuid"), id_halves("other"));
    }
}
