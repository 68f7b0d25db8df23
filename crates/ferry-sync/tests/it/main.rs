//! The golden transcripts of the sync core: each file in `transcripts/` is a sequence of events
//! (`> ` lines) and the actions the machine answered them with (`< ` lines). The test feeds
//! the events and compares the actions with the file; `UPDATE_EXPECT=1 cargo nextest run -p
//! ferry-sync` writes what the machine does instead, for review in the diff.
//!
//! In events, `$VERSION` stands for the version of the transcripts' model and `$MODEL` for its
//! text (as a JSON string), so answers of `GET /v1/model` stay readable.

#![allow(clippy::unwrap_used, reason = "tests fail on any error")]

mod transcript;

macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                transcript::check(stringify!($name));
            }
        )*

        #[test]
        fn every_transcript_file_is_run() {
            transcript::every_file_is_listed(&[$(stringify!($name)),*]);
        }
    };
}

transcripts! {
    // DESIGN.md §4, a sync's course.
    full_sync_uploads_then_downloads_every_entity,
    nothing_to_upload_sends_no_upload,
    unsynchronized_sync_refreshes_only_rejected_objects,
    unsynchronized_sync_with_nothing_rejected_downloads_nothing,
    selected_sync_sends_only_selected_changes_and_refreshes_them,
    selected_sync_refuses_a_reference_to_an_object_created_here,
    integrity_violation_stops_the_sync_before_anything_is_sent,
    a_reference_to_a_removed_object_is_left_to_the_server,
    a_pending_upload_is_resent_unchanged,
    a_restored_server_gets_the_lost_uploads_again_then_a_full_download,
    file_contents_go_before_the_upload,
    a_failed_file_send_is_retried_once_then_ends_the_sync,
    a_gateway_failure_fails_a_file_attempt,
    file_contents_are_fetched_only_when_missing,
    pages_continue_from_the_checkpoint_until_the_last,
    a_full_download_of_held_objects_is_reconciled_by_index,
    an_answer_of_the_wrong_outcomes_is_refused_whole,
    // Faults.
    a_lost_answer_is_retried_after_a_jittered_wait,
    a_busy_server_is_asked_again_after_a_jittered_wait,
    a_server_busy_at_every_attempt_ends_the_sync,
    // Sessions.
    an_expired_access_token_is_refreshed_and_the_request_sent_again,
    a_lost_refresh_answer_is_retried_with_the_same_token,
    a_refused_refresh_ends_the_sync,
    a_session_without_a_refresh_token_ends_at_its_expiry,
    the_network_failing_every_attempt_ends_the_sync,
    a_cut_page_rolls_the_download_back,
    cancel_during_the_download_rolls_it_back,
    cancel_before_the_upload_sends_nothing,
    a_new_model_is_followed_and_makes_a_full_sync_due,
    another_protocol_version_is_refused,
    an_expired_session_ends_the_sync,
    follow_model_only,
    // DESIGN.md §4, when the signed-in user changes.
    the_same_user_signs_in_again_and_keeps_the_data,
    a_new_user_signs_in_and_the_previous_users_data_leaves,
    another_users_changes_refuse_a_new_sign_in,
    a_wrong_password_changes_nothing,
    // DESIGN.md §4, sync to device.
    a_server_action_synchronises_objects_to_the_device,
    an_action_synchronising_what_the_device_cannot_hold_is_refused,
}
