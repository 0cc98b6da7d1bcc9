/* Tests for learner/watch.c, the learner's rank deadlines: hand-worked
 * timelines with timeout 10 s (first deadline at 10 s of silence, second at
 * 20 s), the silence measured from the later of the work's start and the
 * last message, hearing from a late rank, and picking a spare rank. */
#include "learner/watch.h"
#include "tests/harness.h"

TEST(watch_first_and_second_deadline) {
    Watch w;
    CHECK(watch_init(&w, 4, 10, 100) == 0);
    CHECK(watch_check(&w, 2, 100, 110) == WATCH_OK);          /* exactly 10 s: not yet */
    CHECK(watch_check(&w, 2, 100, 110.5) == WATCH_NEWLY_LATE); /* 10.5 s of silence */
    CHECK(watch_is_late(&w, 2) && !watch_is_late(&w, 1));
    CHECK(watch_check(&w, 2, 100, 111) == WATCH_LATE); /* reported once */
    CHECK(watch_check(&w, 2, 115, 119) == WATCH_LATE); /* new work does not restart the clock */
    CHECK(watch_check(&w, 2, 100, 120) == WATCH_LATE); /* 20 s: the second deadline not passed */
    CHECK(watch_check(&w, 2, 100, 120.5) == WATCH_GONE);
    CHECK(watch_silent_for(&w, 2, 125) == 25);
    watch_free(&w);
}

TEST(watch_silence_counts_from_work_start_or_last_message) {
    Watch w;
    CHECK(watch_init(&w, 3, 10, 0) == 0);
    /* idle for a long time, then given work at t = 50: late at 60, not at 10 */
    CHECK(watch_check(&w, 1, 50, 59) == WATCH_OK);
    CHECK(watch_check(&w, 1, 50, 61) == WATCH_NEWLY_LATE);
    /* a rank that keeps answering (a long queue of orders) is never late */
    for (double t = 0; t < 100; t += 9) {
        watch_heard(&w, 0, t);
        CHECK(watch_check(&w, 0, 0, t + 8.9) == WATCH_OK);
    }
    /* silent so long that both deadlines passed at the first look */
    CHECK(watch_check(&w, 2, 0, 30) == WATCH_GONE);
    watch_free(&w);
}

TEST(watch_heard_clears_lateness) {
    Watch w;
    CHECK(watch_init(&w, 2, 10, 0) == 0);
    CHECK(watch_check(&w, 1, 0, 11) == WATCH_NEWLY_LATE);
    watch_heard(&w, 1, 15); /* SIGCONT: it answered */
    CHECK(!watch_is_late(&w, 1));
    CHECK(watch_check(&w, 1, 0, 24) == WATCH_OK);
    CHECK(watch_check(&w, 1, 0, 26) == WATCH_NEWLY_LATE); /* silent again for 11 s */
    watch_heard(&w, -1, 0);                               /* out of range: ignored */
    CHECK(watch_check(&w, 7, 0, 1000) == WATCH_OK);
    watch_free(&w);
}

TEST(watch_pick_skips_late_and_avoided_ranks) {
    Watch w;
    int actors[3] = {3, 4, 5};
    CHECK(watch_init(&w, 6, 10, 0) == 0);
    CHECK(watch_pick(&w, actors, 3, 1, -1) == 4); /* round robin from position 1 */
    CHECK(watch_pick(&w, actors, 3, 4, -1) == 4); /* position wraps */
    CHECK(watch_pick(&w, actors, 3, 1, 4) == 5);  /* not the late one itself */
    CHECK(watch_check(&w, 5, 0, 11) == WATCH_NEWLY_LATE);
    CHECK(watch_pick(&w, actors, 3, 1, 4) == 3);
    CHECK(watch_check(&w, 3, 0, 11) == WATCH_NEWLY_LATE);
    CHECK(watch_pick(&w, actors, 3, 1, 4) == -1); /* no spare left */
    watch_free(&w);
}

TEST(watch_refuses_a_bad_timeout) {
    Watch w;
    CHECK(watch_init(&w, 2, 0, 0) == -1 && harness_err_has("", "rank_timeout", (const char *)NULL));
    CHECK(watch_init(&w, 2, -1, 0) == -1);
    CHECK(watch_init(&w, 2, 0.0 / 0.0, 0) == -1);
}
