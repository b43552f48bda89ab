//! `artstore accounts …`, `artstore keys rotate`, `artstore audit …`.

use anyhow::bail;
use artstore_client::wire::{CreateServiceAccount, ServiceAccount, UpdateServiceAccount};
use clap::Subcommand;

use super::{emit, Connection, Output};

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Create a service account; its secret is printed once.
    Create {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        name: String,
        /// Roles, comma separated: admin, operator, writer, reader.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Chosen client id (generated when absent).
        #[arg(long)]
        id: Option<String>,
        /// Issue tokens only over mutual TLS with a client certificate naming the account
        /// (`artstore cluster client-cert`).
        #[arg(long)]
        require_client_cert: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    List {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        include_deleted: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    Get {
        #[command(flatten)]
        conn: Connection,
        client_id: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Change name, description, roles, or enable/disable.
    Update {
        #[command(flatten)]
        conn: Connection,
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
        /// Require (true) or stop requiring (false) a client certificate for tokens.
        #[arg(long)]
        require_client_cert: Option<bool>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Issue a new secret (printed once); the old one stops at once unless --grace-period is given.
    RotateSecret {
        #[command(flatten)]
        conn: Connection,
        client_id: String,
        /// Seconds the old secret keeps working.
        #[arg(long)]
        grace_period: Option<u64>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Revoke tokens on every node: one by its jti (`--jti`), or every token of CLIENT_ID issued
    /// before `--issued-before` (default now). Admin role.
    RevokeTokens {
        #[command(flatten)]
        conn: Connection,
        /// The account whose tokens to revoke.
        client_id: Option<String>,
        /// One token's `jti` (as the audit log's `token.issue` records show it).
        #[arg(long, conflicts_with = "client_id")]
        jti: Option<String>,
        /// RFC 3339; with CLIENT_ID, only tokens issued before this time.
        #[arg(long, requires = "client_id")]
        issued_before: Option<String>,
    },
    /// Soft-delete an account: its tokens stop working on every node at once.
    Delete {
        #[command(flatten)]
        conn: Connection,
        client_id: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Subcommand)]
pub enum ElementsCommand {
    /// List every node's storage elements with mode and usage.
    List {
        #[command(flatten)]
        conn: Connection,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Move an element forward: rw → ro → ar (edit stays edit). Audited.
    SetMode {
        #[command(flatten)]
        conn: Connection,
        node_id: u64,
        name: String,
        /// ro or ar (or rw for an element registered ro by mistake is refused: modes never go back).
        mode: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

pub async fn run_elements(cmd: ElementsCommand) -> anyhow::Result<()> {
    match cmd {
        ElementsCommand::List { conn, output } => {
            let list = conn.client()?.storage_elements().await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:>6}  {:<16} {:<5} {:>8} {:>16}", "NODE", "ELEMENT", "MODE", "PRIORITY", "USED BYTES");
                for e in &list.elements {
                    println!("{:>6}  {:<16} {:<5} {:>8} {:>16}", e.node_id, e.name, e.mode, e.priority, e.used_bytes);
                }
            }
        }
        ElementsCommand::SetMode { conn, node_id, name, mode, output } => {
            let e = conn.client()?.set_element_mode(node_id, &name, &mode).await?;
            emit(output, &e, |e| println!("node {} element {} is now {}", e.node_id, e.name, e.mode))?;
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a new JWT signing key now; the previous one keeps validating its tokens.
    Rotate {
        #[command(flatten)]
        conn: Connection,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print audit records.
    List {
        #[command(flatten)]
        conn: Connection,
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        action: Option<String>,
        /// Only records of this actor (a client id, or `system`).
        #[arg(long)]
        actor: Option<String>,
        /// Only records at or after this time (RFC 3339 or unix milliseconds).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (RFC 3339 or unix milliseconds).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Check the audit hash chain; exits with status 1 and names the first broken record if any.
    Verify {
        #[command(flatten)]
        conn: Connection,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

fn print_account(a: &ServiceAccount, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(a)?);
    } else {
        let state = if a.deleted_at.is_some() {
            "deleted"
        } else if a.enabled {
            "enabled"
        } else {
            "disabled"
        };
        let expires = a.secret_expires_at.as_deref().unwrap_or("-");
        println!(
            "{:<24} {:<9} {:<24} secret expires {:<20} {}",
            a.client_id,
            state,
            a.roles.join(","),
            expires,
            a.name
        );
    }
    Ok(())
}

pub async fn run_accounts(cmd: AccountsCommand) -> anyhow::Result<()> {
    match cmd {
        AccountsCommand::Create { conn, name, roles, description, id, require_client_cert, output } => {
            let req = CreateServiceAccount {
                client_id: id,
                name,
                description,
                roles,
                client_secret: None,
                require_client_cert,
            };
            let created = conn.client()?.create_account(&req).await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("client_id:     {}", created.account.client_id);
                println!("client_secret: {}", created.client_secret);
                println!("expires:       {}", created.account.secret_expires_at.as_deref().unwrap_or("-"));
                eprintln!("The secret is shown only now; store it safely.");
            }
        }
        AccountsCommand::List { conn, include_deleted, output } => {
            let list = conn.client()?.list_accounts(include_deleted).await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for a in &list.accounts {
                    print_account(a, output)?;
                }
            }
        }
        AccountsCommand::Get { conn, client_id, output } => {
            print_account(&conn.client()?.get_account(&client_id).await?, output)?
        }
        AccountsCommand::Update {
            conn,
            client_id,
            name,
            description,
            roles,
            require_client_cert,
            enable,
            disable,
            output,
        } => {
            let enabled = match (enable, disable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            if name.is_none()
                && description.is_none()
                && roles.is_none()
                && enabled.is_none()
                && require_client_cert.is_none()
            {
                bail!(
                    "nothing to change: give --name, --description, --roles, --require-client-cert, --enable or \
                     --disable"
                );
            }
            let update = UpdateServiceAccount { name, description, roles, enabled, require_client_cert };
            print_account(&conn.client()?.update_account(&client_id, &update).await?, output)?;
        }
        AccountsCommand::RotateSecret { conn, client_id, grace_period, output } => {
            let r = conn.client()?.rotate_secret(&client_id, grace_period).await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("client_id:     {}", r.account.client_id);
                println!("client_secret: {}", r.client_secret);
                println!("expires:       {}", r.account.secret_expires_at.as_deref().unwrap_or("-"));
            }
        }
        AccountsCommand::RevokeTokens { conn, client_id, jti, issued_before } => {
            if client_id.is_none() && jti.is_none() {
                anyhow::bail!("give CLIENT_ID or --jti");
            }
            let what = jti
                .as_ref()
                .map(|j| format!("token {j}"))
                .unwrap_or_else(|| format!("tokens of {}", client_id.as_deref().unwrap_or_default()));
            let revoke = artstore_client::wire::RevokeTokens { jti, client_id, issued_before };
            conn.client()?.revoke_tokens(&revoke).await?;
            eprintln!("revoked: {what}");
        }
        AccountsCommand::Delete { conn, client_id, output } => {
            conn.client()?.delete_account(&client_id).await?;
            let report = serde_json::json!({ "client_id": client_id, "deleted": true });
            emit(output, &report, |_| eprintln!("account {client_id} deleted"))?;
        }
    }
    Ok(())
}

pub async fn run_keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate { conn, output } => {
            let r = conn.client()?.rotate_keys().await?;
            emit(output, &r, |r| println!("new signing key: {}", r.kid))?;
        }
    }
    Ok(())
}

pub async fn run_audit(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List { conn, from, limit, action, actor, since, until, output } => {
            let filter = artstore_client::AuditFilter { from, limit, action, actor, since, until };
            let page = conn.client()?.audit_where(&filter).await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for r in &page.records {
                    println!("{:>6} {} {:<16} {:<22} {:<34} {}", r.seq, r.at, r.actor, r.action, r.target, r.outcome);
                }
            }
        }
        AuditCommand::Verify { conn, output } => {
            let v = conn.client()?.verify_audit().await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            match (v.first_broken_seq, v.reason) {
                (None, _) if output == Output::Text => println!("audit chain intact: {} records verified", v.entries),
                (None, _) => {}
                (Some(seq), reason) => bail!("audit chain broken at record {seq}: {}", reason.unwrap_or_default()),
            }
        }
    }
    Ok(())
}
