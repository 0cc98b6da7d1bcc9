/* Tests for common/fsutil.c: fs_read_all on empty, large (buffer-growth
 * boundaries, NUL bytes) and missing files; fs_join's separator rules; the
 * atomic writers (content, replacement, no temporary left behind, refusal
 * of directories and FIFOs only, failures that leave the old file alone);
 * the output and input rules (in-place writers refuse symlinks, an output
 * that is an input, FIFO inputs, --force for creating commands, the
 * RLHF_TEST_FAIL_WRITE fault injection); the two clocks. Files are written
 * with plain stdio (harness_write_file), not with the writers under test;
 * they are read back with harness_file_is, which reads through fs_read_all,
 * itself checked first here against files of known bytes. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "tests/harness.h"

/* A fresh directory under the run's scratch directory. */
static const char *fresh_dir(const char *name) {
    static char buf[8][600];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 600, "%s/fsutil_%s", harness_tmpdir(), name);
    mkdir(p, 0777);
    return p;
}

/* Directory entries whose name contains ".tmp.". */
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (strstr(e->d_name, FS_TMP_INFIX)) n++;
    closedir(d);
    return n;
}

/* ---- fs_read_all ------------------------------------------------------------ */

TEST(fs_read_all_empty_file) {
    const char *path = harness_join(fresh_dir("read_empty"), "empty");
    harness_write_file(path, "", 0);
    size_t len = 99;
    char *s = fs_read_all(path, &len);
    CHECKF(s != NULL, "%s", err_msg());
    CHECK(len == 0);
    CHECK(s && s[0] == 0);
    free(s);
}

/* Sizes around the 64 KiB starting buffer and its doublings, with NULs and
 * every byte value, must come back whole and NUL-terminated. */
TEST(fs_read_all_sizes_across_buffer_growth) {
    const char *dir = fresh_dir("read_sizes");
    static const size_t sizes[] = {1, 65534, 65535, 65536, 65537, 131071, 131072, 1000003};
    unsigned char *data = malloc(1000003);
    for (size_t i = 0; i < 1000003; i++) data[i] = (unsigned char)(i * 2654435761u >> 13);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        const char *path = harness_join(dir, "data");
        harness_write_file(path, data, sizes[k]);
        size_t len = 0;
        char *s = fs_read_all(path, &len);
        CHECKF(s && len == sizes[k], "size %zu: got %zu", sizes[k], s ? len : 0);
        CHECKF(s && memcmp(s, data, sizes[k]) == 0, "size %zu: contents differ", sizes[k]);
        CHECKF(s && s[sizes[k]] == 0, "size %zu: no NUL after the data", sizes[k]);
        free(s);
    }
    free(data);
}

TEST(fs_read_all_missing_file_names_it) {
    const char *path = harness_join(fresh_dir("read_missing"), "absent.txt");
    size_t len = 7;
    CHECK(fs_read_all(path, &len) == NULL);
    CHECKF(strstr(err_msg(), path) && strstr(err_msg(), "cannot open") && strstr(err_msg(), "No such file"),
           "%s", err_msg());
    CHECK(len == 7);
}

/* ---- fs_join ------------------------------------------------------------------ */

TEST(fs_join_separators) {
    static const char *const cases[][3] = {
        {"a", "b", "a/b"},     {"a/", "b", "a/b"},        {"", "b", "b"},
        {"/", "b", "/b"},      {"run/ppo", "m.h5", "run/ppo/m.h5"},
        {"a//", "b", "a//b"},  {"a", "", "a/"},           {".", "x/y", "./x/y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = fs_join(cases[i][0], cases[i][1]);
        CHECKF(!strcmp(got, cases[i][2]), "fs_join(\"%s\", \"%s\") = \"%s\", expected \"%s\"", cases[i][0],
               cases[i][1], got, cases[i][2]);
        free(got);
    }
}

/* ---- atomic output -------------------------------------------------------------- */

TEST(fs_write_atomic_creates_and_replaces) {
    const char *dir = fresh_dir("atomic");
    const char *path = harness_join(dir, "out.txt");
    CHECKF(fs_write_atomic(path, "first\n", 6) == 0, "%s", err_msg());
    CHECK(harness_file_is(path, "first\n", 6));
    CHECKF(fs_write_atomic(path, "second, longer\n", 15) == 0, "%s", err_msg());
    CHECK(harness_file_is(path, "second, longer\n", 15));
    CHECKF(fs_write_atomic(path, "", 0) == 0, "%s", err_msg());
    CHECK(harness_file_is(path, "", 0));
    CHECK(count_temporaries(dir) == 0);
}

/* A symlink to a regular file was always replaceable (rename replaces the
 * link); only non-regular targets are refused. */
TEST(fs_write_atomic_accepts_a_symlink_to_a_file) {
    const char *dir = fresh_dir("atomic_link");
    const char *real = harness_join(dir, "real"), *link = harness_join(dir, "link");
    harness_write_file(real, "old", 3);
    CHECK(symlink("real", link) == 0);
    CHECKF(fs_write_atomic(link, "new", 3) == 0, "%s", err_msg());
    CHECK(harness_file_is(link, "new", 3));
    CHECK(count_temporaries(dir) == 0);
}

TEST(fs_write_atomic_refuses_directories_and_fifos) {
    const char *dir = fresh_dir("atomic_refuse");
    const char *sub = harness_join(dir, "sub"), *fifo = harness_join(dir, "fifo");
    mkdir(sub, 0777);
    CHECK(mkfifo(fifo, 0666) == 0);
    CHECK(fs_write_atomic(sub, "x", 1) == -1);
    CHECKF(strstr(err_msg(), sub) && strstr(err_msg(), "not a regular file"), "%s", err_msg());
    CHECK(fs_write_atomic(fifo, "x", 1) == -1);
    CHECKF(strstr(err_msg(), "not a regular file"), "%s", err_msg());
    struct stat st;
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(count_temporaries(dir) == 0);
}

TEST(fs_write_atomic_into_missing_directory_fails_cleanly) {
    const char *path = harness_join(fresh_dir("atomic_missing"), "no/such/x");
    CHECK(fs_write_atomic(path, "x", 1) == -1);
    CHECKF(strstr(err_msg(), "cannot create") && strstr(err_msg(), "No such file"), "%s", err_msg());
}

static int failing_writer(FILE *f, void *ctx) {
    fputs((const char *)ctx, f);
    return err_set("writer gave up");
}

static int good_writer(FILE *f, void *ctx) {
    fputs((const char *)ctx, f);
    return 0;
}

/* A writer's own failure: its message, the old file untouched, no
 * temporary left. */
TEST(fs_write_atomic_with_keeps_old_file_on_writer_error) {
    const char *dir = fresh_dir("atomic_with");
    const char *path = harness_join(dir, "out.txt");
    CHECKF(fs_write_atomic_with(path, good_writer, "kept\n") == 0, "%s", err_msg());
    CHECK(harness_file_is(path, "kept\n", 5));
    CHECK(fs_write_atomic_with(path, failing_writer, "partial") == -1);
    CHECKF(strstr(err_msg(), "writer gave up"), "%s", err_msg());
    CHECK(harness_file_is(path, "kept\n", 5));
    CHECK(count_temporaries(dir) == 0);
}

/* The temporary lives beside the target, and a commit that cannot rename
 * (the temporary is gone) reports both names. */
TEST(fs_tmp_name_and_commit) {
    const char *dir = fresh_dir("commit");
    const char *path = harness_join(dir, "x.h5");
    char *tmp = fs_tmp_name(path);
    char want[800];
    snprintf(want, sizeof want, "%s.tmp.%ld", path, (long)getpid());
    CHECKF(!strcmp(tmp, want), "%s", tmp);
    harness_write_file(tmp, "abc", 3);
    CHECKF(fs_commit(tmp, path) == 0, "%s", err_msg());
    CHECK(harness_file_is(path, "abc", 3));
    CHECK(access(tmp, F_OK) != 0);
    CHECK(fs_commit(tmp, path) == -1);
    CHECKF(strstr(err_msg(), path) && strstr(err_msg(), tmp), "%s", err_msg());
    CHECK(harness_file_is(path, "abc", 3));
    free(tmp);
}

/* A commit over a directory is refused and removes the temporary. */
TEST(fs_commit_refuses_directory_and_removes_temporary) {
    const char *dir = fresh_dir("commit_dir");
    const char *sub = harness_join(dir, "sub");
    mkdir(sub, 0777);
    char *tmp = fs_tmp_name(sub);
    harness_write_file(tmp, "abc", 3);
    CHECK(fs_commit(tmp, sub) == -1);
    CHECKF(strstr(err_msg(), "not a regular file"), "%s", err_msg());
    CHECK(access(tmp, F_OK) != 0);
    free(tmp);
}

/* ---- the output and input rules (issue 14) ------------------------------------ */

/* An in-place writer (the HDF5 logs) refuses a symlink, even to a regular
 * file, and whatever fs_check_target refuses; absent and regular pass. */
TEST(fs_check_inplace_refuses_symlinks) {
    const char *dir = fresh_dir("inplace");
    const char *real = harness_join(dir, "real"), *link = harness_join(dir, "link"), *fifo = harness_join(dir, "fifo");
    harness_write_file(real, "old", 3);
    CHECK(symlink("real", link) == 0);
    CHECK(mkfifo(fifo, 0666) == 0);
    CHECKF(fs_check_inplace(harness_join(dir, "absent")) == 0, "%s", err_msg());
    CHECKF(fs_check_inplace(real) == 0, "%s", err_msg());
    CHECK(fs_check_inplace(link) == -1);
    CHECKF(strstr(err_msg(), link) && strstr(err_msg(), "symbolic link"), "%s", err_msg());
    CHECK(fs_check_inplace(fifo) == -1);
    CHECKF(strstr(err_msg(), "not a regular file (a FIFO)"), "%s", err_msg());
    CHECK(fs_check_inplace(dir) == -1);
    CHECKF(strstr(err_msg(), "(a directory)"), "%s", err_msg());
    CHECK(harness_file_is(real, "old", 3));
}

/* Same file through a symlink or a hard link; different or absent files
 * are not. */
TEST(fs_check_not_input_names_the_input) {
    const char *dir = fresh_dir("not_input");
    const char *a = harness_join(dir, "a"), *b = harness_join(dir, "b"), *sl = harness_join(dir, "sl"), *hl = harness_join(dir, "hl");
    harness_write_file(a, "a", 1);
    harness_write_file(b, "b", 1);
    CHECK(symlink("a", sl) == 0);
    CHECK(link(a, hl) == 0);
    CHECK(fs_same_file(a, sl) == 1);
    CHECK(fs_same_file(a, hl) == 1);
    CHECK(fs_same_file(a, b) == 0);
    CHECK(fs_same_file(a, harness_join(dir, "absent")) == 0);
    CHECK(fs_same_file(NULL, a) == 0);
    const char *inputs[] = {b, NULL, a};
    CHECKF(fs_check_not_input(harness_join(dir, "absent"), inputs, 3) == 0, "%s", err_msg());
    CHECK(fs_check_not_input(hl, inputs, 3) == -1);
    CHECKF(strstr(err_msg(), hl) && strstr(err_msg(), "same file as the input") && strstr(err_msg(), a), "%s",
           err_msg());
    CHECKF(fs_check_not_input(b, inputs + 1, 2) == 0, "%s", err_msg());
}

/* A run directory's own files (named ones and existing numbered
 * checkpoints) against a command's inputs; other files there are not its. */
TEST(fs_check_dir_not_input_covers_names_and_checkpoints) {
    const char *dir = fresh_dir("dir_not_input");
    const char *data = harness_join(dir, "data.txt"), *ck = harness_join(dir, "ckpt-00000004.h5");
    const char *other = harness_join(dir, "ckpt-notes.txt"), *hl = harness_join(dir, "metrics.h5");
    harness_write_file(data, "d", 1);
    harness_write_file(ck, "c", 1);
    harness_write_file(other, "o", 1);
    const char *names[] = {"final.h5", "metrics.h5", NULL};
    const char *in_data[] = {data}, *in_ck[] = {ck}, *in_other[] = {other};
    CHECKF(fs_check_dir_not_input(dir, names, "ckpt-", in_data, 1) == 0, "%s", err_msg()); /* data kept in out_dir */
    CHECKF(fs_check_dir_not_input(dir, names, "ckpt-", in_other, 1) == 0, "%s", err_msg()); /* not a checkpoint */
    CHECK(fs_check_dir_not_input(dir, names, "ckpt-", in_ck, 1) == -1);
    CHECK_ERR(ck, "is the same file as the input");
    CHECK(link(data, hl) == 0); /* the data hard-linked as a log the run writes in place */
    CHECK(fs_check_dir_not_input(dir, names, "ckpt-", in_data, 1) == -1);
    CHECK_ERR(hl, "is the same file as the input", data);
    CHECKF(fs_check_dir_not_input(harness_join(dir, "absent"), names, "ckpt-", in_data, 1) == 0, "%s", err_msg());
}

/* err_mul_size and err_format_bytes: the arithmetic and wording of size
 * messages (common/err.h). */
TEST(err_size_helpers) {
    size_t r = 7;
    CHECK(err_mul_size(3, 4, &r) == 0 && r == 12);
    CHECK(err_mul_size((size_t)1 << 40, (size_t)1 << 30, &r) == -1 && r == 12);
    CHECK(err_mul_size(SIZE_MAX, 1, NULL) == 0 && err_mul_size(SIZE_MAX, 2, NULL) == -1);
    char b[32];
    err_format_bytes(17, b, sizeof b);
    CHECKF(!strcmp(b, "17 bytes"), "%s", b);
    err_format_bytes(64e3, b, sizeof b);
    CHECKF(!strcmp(b, "64.0 KB"), "%s", b);
    err_format_bytes(999.96e6, b, sizeof b);
    CHECKF(!strcmp(b, "1.0 GB"), "%s", b);
    err_format_bytes(480005329200000.0, b, sizeof b);
    CHECKF(!strcmp(b, "480.0 TB"), "%s", b);
}

/* A FIFO input is refused without opening it (an open would block). */
TEST(fs_check_input_refuses_fifos_at_once) {
    const char *dir = fresh_dir("input");
    const char *fifo = harness_join(dir, "fifo"), *reg = harness_join(dir, "reg");
    CHECK(mkfifo(fifo, 0666) == 0);
    harness_write_file(reg, "x", 1);
    CHECK(fs_check_input(fifo, "a checkpoint") == -1);
    CHECKF(strstr(err_msg(), fifo) && strstr(err_msg(), "a checkpoint must be a regular file, not a FIFO"), "%s",
           err_msg());
    CHECK(fs_check_input(dir, "a checkpoint") == -1);
    CHECKF(fs_check_input(reg, "a checkpoint") == 0, "%s", err_msg());
    CHECKF(fs_check_input(harness_join(dir, "absent"), "a checkpoint") == 0, "%s", err_msg());
}

/* Creating commands keep an existing file (even a dangling link) unless
 * forced, and even forced never replace a non-regular one. */
TEST(fs_check_new_needs_force) {
    const char *dir = fresh_dir("new");
    const char *reg = harness_join(dir, "reg"), *dangle = harness_join(dir, "dangle"), *fifo = harness_join(dir, "fifo");
    harness_write_file(reg, "x", 1);
    CHECK(symlink("nowhere", dangle) == 0);
    CHECK(mkfifo(fifo, 0666) == 0);
    CHECKF(fs_check_new(harness_join(dir, "absent"), 0) == 0, "%s", err_msg());
    CHECK(fs_check_new(reg, 0) == -1);
    CHECKF(strstr(err_msg(), reg) && strstr(err_msg(), "exists; give --force"), "%s", err_msg());
    CHECK(fs_check_new(dangle, 0) == -1);
    CHECKF(fs_check_new(reg, 1) == 0, "%s", err_msg());
    CHECK(fs_check_new(fifo, 1) == -1);
    CHECKF(strstr(err_msg(), "not a regular file"), "%s", err_msg());
}

/* RLHF_TEST_FAIL_WRITE fails matching temporaries only, removing them. */
TEST(fs_write_tmp_fault_injection) {
    const char *dir = fresh_dir("inject");
    const char *path = harness_join(dir, "victim.txt"), *other = harness_join(dir, "other.txt");
    harness_write_file(path, "old", 3);
    setenv("RLHF_TEST_FAIL_WRITE", "victim.txt", 1);
    CHECK(fs_write_atomic(path, "new", 3) == -1);
    CHECKF(strstr(err_msg(), "write failed"), "%s", err_msg());
    CHECKF(fs_write_atomic(other, "new", 3) == 0, "%s", err_msg());
    unsetenv("RLHF_TEST_FAIL_WRITE");
    CHECK(harness_file_is(path, "old", 3));
    CHECK(count_temporaries(dir) == 0);
}

/* ---- clocks --------------------------------------------------------------------- */

TEST(fs_clocks) {
    double a = fs_now();
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    double b = fs_now();
    CHECKF(b - a >= 0.019 && b - a < 5, "monotonic step %g s", b - a);
    double wall = fs_wall_now(), now = (double)time(NULL);
    CHECKF(wall > now - 2 && wall < now + 2, "wall %f vs time() %f", wall, now);
}

/* ---- processes ------------------------------------------------------------------ */

/* Our own start time is known; a child that exited but is not reaped yet
 * (a zombie) and a reaped one both count as gone. */
TEST(fs_process_start_live_zombie_and_gone) {
    CHECK(fs_process_start(getpid()) > 0);
    pid_t child = fork();
    if (child == 0) _exit(0);
    CHECK(child > 0);
    struct timespec pause = {0, 10 * 1000 * 1000};
    unsigned long long start = 1;
    for (int i = 0; i < 200 && start; i++) { /* until the child has exited */
        nanosleep(&pause, NULL);
        start = fs_process_start(child);
    }
    CHECKF(start == 0, "zombie child %ld still has start time %llu", (long)child, start);
    waitpid(child, NULL, 0);
    CHECK(fs_process_start(child) == 0);
}
