//! The conformance suite on SQLite: each case on its own fresh store, and
//! all of them in sequence on one shared store.

use std::path::PathBuf;

use mailroom_store::conformance;

/// Runs `case` against a store in a new temporary directory; every call of
/// the opener opens a new handle (with its own writer thread) on that store.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path: PathBuf = dir.path().to_path_buf();
            conformance::$case(&opener(path)).await;
        }
    )*};
}

cases!(
    domains_crud,
    accounts_crud,
    aliases_crud,
    default_mailboxes,
    resolve_recipient,
    deliver_to_two_accounts,
    deliver_to_special_use,
    uids_increase_and_are_never_reused,
    concurrent_deliveries,
    modseq_bumps,
    store_flags_ops,
    unchanged_since,
    visible_from_fresh_handle,
    blobs_deleted_when_unreferenced,
    inline_content_lives_and_dies_with_its_rows,
    header_sections_kept_apart,
    uids_keywords_and_subject_search,
    orphan_blobs_are_swept,
    change_events_after_commit,
    create_mailbox_with_parents,
    create_duplicate_mailbox,
    invalid_mailbox_names,
    delete_mailbox_keeps_children,
    rename_mailbox_with_inferiors,
    rename_inbox_moves_messages,
    subscriptions_independent_of_existence,
    mailbox_status_counts,
    copy_messages_share_blobs,
    move_messages_records_vanished,
    expunge_deleted_all_and_within,
    changed_and_vanished_since,
    uids_never_reused_after_move_and_rename,
    queue_submit_and_claim,
    queue_reports_and_notices,
    queue_notice_is_queued,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::run_all(opener(dir.path().to_path_buf())).await;
}

/// Opens a new handle on the store in `path` each time it is called.
fn opener(path: PathBuf) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = mailroom_store::SqliteStore>>> {
    move || {
        let path = path.clone();
        Box::pin(async move { crate::open(&path).await })
    }
}
