/* test-log.c - core/log.h: level filter, the exact line format, the size cap keeping one
 * previous generation, reopening after an outside rotation, and stderr surviving an
 * unusable file. */
#include "log.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *dir;
} Fixture;

static void setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("test-log-XXXXXX", &error);
    g_assert_no_error(error);
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d != NULL) {
        const char *name;
        while ((name = g_dir_read_name(d)) != NULL) {
            g_autofree char *p = g_build_filename(path, name, NULL);
            rm_rf(p);
        }
        g_dir_close(d);
    }
    g_remove(path);
}

static void teardown(Fixture *f, gconstpointer data)
{
    rm_rf(f->dir);
    g_free(f->dir);
}

static char **read_lines(const char *path)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error))
        return g_new0(char *, 1);
    g_assert_true(g_str_has_suffix(text, "\n") || *text == '\0');
    if (*text)
        text[strlen(text) - 1] = '\0';
    return *text ? g_strsplit(text, "\n", -1) : g_new0(char *, 1);
}

static void test_levels(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "levels.log", NULL);
    g_autoptr(PbLog) log = pb_log_new("tftp");
    g_assert_true(pb_log_configure(log, path, 2, 0, FALSE, FALSE, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(pb_log_path(log), ==, path);

    g_assert_true(pb_log_enabled(log, 0));
    g_assert_true(pb_log_enabled(log, 2));
    g_assert_false(pb_log_enabled(log, 3));
    for (int level = 0; level <= 4; level++)
        pb_log_printf(log, level, "message at %d", level);

    g_auto(GStrv) lines = read_lines(path);
    g_assert_cmpuint(g_strv_length(lines), ==, 3);
    for (int level = 0; level <= 2; level++) {
        g_autofree char *want = g_strdup_printf("message at %d", level);
        g_assert_true(g_str_has_suffix(lines[level], want));
    }

    /* Level 0 writes only critical lines; reconfiguring to 4 writes everything. */
    g_assert_true(pb_log_configure(log, path, 0, 0, FALSE, FALSE, &error));
    pb_log_write(log, 1, "hidden");
    pb_log_write(log, 0, "shown");
    g_assert_true(pb_log_configure(log, path, 4, 0, FALSE, FALSE, &error));
    pb_log_write(log, 4, "debug");
    g_auto(GStrv) after = read_lines(path);
    g_assert_cmpuint(g_strv_length(after), ==, 5);
    /* Level 0 is "always shown", not "critical": start and stop are notices. */
    g_assert_true(g_str_has_suffix(after[3], "] NOTICE: shown"));
    g_assert_true(g_str_has_suffix(after[4], "] DEBUG: debug"));
}

static void test_format(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "sub", "dir", "format.log", NULL);
    g_autoptr(PbLog) log = pb_log_new("proxydhcp");
    /* The parent directories are created. */
    g_assert_true(pb_log_configure(log, path, 4, 0, FALSE, FALSE, &error));
    g_assert_no_error(error);

    GDateTime *before = g_date_time_new_now_utc();
    static const char *const names[] = {"NOTICE", "WARNING", "NOTICE", "INFO", "DEBUG"};
    for (int level = 0; level <= 4; level++)
        pb_log_printf(log, level, "offer to %s xid 0x%x", "01:02:03:04:05:06", 0x1234 + level);
    /* Text from the network cannot forge a second line or a terminal escape. */
    pb_log_write(log, 1, "file \"a\nfake line\x1b[2J\" \x7f\ttab\n");
    GDateTime *after = g_date_time_new_now_utc();

    struct stat st;
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0640);

    g_auto(GStrv) lines = read_lines(path);
    g_assert_cmpuint(g_strv_length(lines), ==, 6);
    g_autoptr(GRegex) re = g_regex_new(
        "^(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z) \\[([a-z]+)\\] ([A-Z]+): (.*)$", 0,
        0, &error);
    g_assert_no_error(error);
    for (int i = 0; i < 6; i++) {
        g_autoptr(GMatchInfo) m = NULL;
        if (!g_regex_match(re, lines[i], 0, &m))
            g_error("line %d does not match: %s", i, lines[i]);
        g_autofree char *stamp = g_match_info_fetch(m, 1);
        g_autofree char *ident = g_match_info_fetch(m, 2);
        g_autofree char *level = g_match_info_fetch(m, 3);
        g_autofree char *msg = g_match_info_fetch(m, 4);
        GDateTime *t = g_date_time_new_from_iso8601(stamp, NULL);
        g_assert_nonnull(t);
        /* Millisecond stamps: allow the truncation below "before". */
        g_assert_cmpint(g_date_time_difference(t, before), >=, -1000);
        g_assert_cmpint(g_date_time_difference(after, t), >=, 0);
        g_assert_cmpint(g_date_time_get_utc_offset(t), ==, 0);
        g_date_time_unref(t);
        g_assert_cmpstr(ident, ==, "proxydhcp");
        if (i < 5) {
            g_autofree char *want =
                g_strdup_printf("offer to 01:02:03:04:05:06 xid 0x%x", 0x1234 + i);
            g_assert_cmpstr(level, ==, names[i]);
            g_assert_cmpstr(msg, ==, want);
        } else {
            g_assert_cmpstr(level, ==, "WARNING");
            g_assert_cmpstr(msg, ==, "file \"a\\x0afake line\\x1b[2J\" \\x7f tab");
        }
    }
    g_date_time_unref(before);
    g_date_time_unref(after);

    g_assert_cmpstr(pb_log_level_name(-3), ==, "NOTICE");
    g_assert_cmpstr(pb_log_level_name(9), ==, "DEBUG");
}

/* The level filters; the severity, given apart, is what the line says. */
static void test_severity(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "sev.log", NULL);
    g_autoptr(PbLog) log = pb_log_new("prebootd");
    g_assert_true(pb_log_configure(log, path, 0, 0, FALSE, FALSE, &error));
    pb_log_printf_sev(log, 0, PB_LOG_SEV_ERROR, "control socket: %s", "in use");
    pb_log_write_sev(log, 0, PB_LOG_SEV_INFO, "shown at level 0");
    pb_log_write_sev(log, 1, PB_LOG_SEV_ERROR, "filtered by its level");
    pb_log_printf(log, 0, "ready");
    g_auto(GStrv) lines = read_lines(path);
    g_assert_cmpuint(g_strv_length(lines), ==, 3);
    g_assert_true(g_str_has_suffix(lines[0], "[prebootd] ERROR: control socket: in use"));
    g_assert_true(g_str_has_suffix(lines[1], "[prebootd] INFO: shown at level 0"));
    g_assert_true(g_str_has_suffix(lines[2], "[prebootd] NOTICE: ready"));
    g_assert_cmpint(pb_log_level_severity(0), ==, PB_LOG_SEV_NOTICE);
    g_assert_cmpint(pb_log_level_severity(1), ==, PB_LOG_SEV_WARNING);
    g_assert_cmpint(pb_log_level_severity(4), ==, PB_LOG_SEV_DEBUG);
    g_assert_cmpstr(pb_log_severity_name(PB_LOG_SEV_ERROR), ==, "ERROR");
}

/* A rotation that cannot happen (here: path.1 is a directory; in the field, a daemon that
 * can no longer create files where its log is) keeps the file open and says so once. */
static void test_rotation_fails(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "stuck.log", NULL);
    g_autofree char *old = g_strconcat(path, ".1", NULL);
    g_autofree char *inside = g_build_filename(old, "keep", NULL);
    g_assert_cmpint(g_mkdir(old, 0755), ==, 0);
    g_assert_true(g_file_set_contents(inside, "x", 1, NULL));
    g_autoptr(PbLog) log = pb_log_new("tftp");
    g_assert_true(pb_log_configure(log, path, 4, 100, FALSE, FALSE, &error));
    for (int i = 0; i < 6; i++)
        pb_log_printf(log, 3, "line %03d", i);
    g_auto(GStrv) lines = read_lines(path);
    guint warnings = 0, written = 0;
    for (char **l = lines; *l; l++) {
        if (strstr(*l, "] WARNING: log rotation of ") && strstr(*l, "writing on"))
            warnings++;
        else if (strstr(*l, "] INFO: line 0"))
            written++;
    }
    g_assert_cmpuint(written, ==, 6);
    g_assert_cmpuint(warnings, ==, 1);
}

static void test_rotation(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "cap.log", NULL);
    g_autofree char *old = g_strconcat(path, ".1", NULL);
    g_autoptr(PbLog) log = pb_log_new("tftp");
    /* Each line is 25 (stamp and space) + 7 ("[tftp] ") + 6 ("INFO: ") + 8 (message) + 1 = 47
     * bytes. */
    const guint64 line_len = 47;
    g_assert_true(pb_log_configure(log, path, 4, 4 * line_len, FALSE, FALSE, &error));

    for (int i = 0; i < 4; i++)
        pb_log_printf(log, 3, "line %03d", i);
    struct stat st;
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 4 * line_len);
    g_assert_false(g_file_test(old, G_FILE_TEST_EXISTS));

    /* The fifth line would pass the cap: the four go to .1, the fifth starts a new file. */
    pb_log_printf(log, 3, "line %03d", 4);
    g_auto(GStrv) gen1 = read_lines(old);
    g_auto(GStrv) cur = read_lines(path);
    g_assert_cmpuint(g_strv_length(gen1), ==, 4);
    g_assert_true(g_str_has_suffix(gen1[0], "line 000"));
    g_assert_true(g_str_has_suffix(gen1[3], "line 003"));
    g_assert_cmpuint(g_strv_length(cur), ==, 1);
    g_assert_true(g_str_has_suffix(cur[0], "line 004"));

    /* Another round replaces .1: only one previous generation is ever kept. */
    for (int i = 5; i < 12; i++)
        pb_log_printf(log, 3, "line %03d", i);
    g_auto(GStrv) gen1b = read_lines(old);
    g_auto(GStrv) curb = read_lines(path);
    g_assert_cmpuint(g_strv_length(gen1b), ==, 4);
    g_assert_true(g_str_has_suffix(gen1b[0], "line 004"));
    g_assert_true(g_str_has_suffix(gen1b[3], "line 007"));
    g_assert_cmpuint(g_strv_length(curb), ==, 4);
    g_assert_true(g_str_has_suffix(curb[3], "line 011"));
    g_autofree char *older = g_strconcat(path, ".2", NULL);
    g_assert_false(g_file_test(older, G_FILE_TEST_EXISTS));

    /* The cap counts what the file already held when opened. */
    g_autoptr(PbLog) again = pb_log_new("tftp");
    g_assert_true(pb_log_configure(again, path, 4, 4 * line_len, FALSE, FALSE, &error));
    pb_log_printf(again, 3, "line %03d", 12);
    g_auto(GStrv) gen1c = read_lines(old);
    g_assert_true(g_str_has_suffix(gen1c[3], "line 011"));
    g_auto(GStrv) curc = read_lines(path);
    g_assert_cmpuint(g_strv_length(curc), ==, 1);

    /* A line longer than the cap still gets written, alone. */
    g_autofree char *big = g_strnfill(400, 'x');
    pb_log_write(again, 3, big);
    g_auto(GStrv) curd = read_lines(path);
    g_assert_cmpuint(g_strv_length(curd), ==, 1);
    g_assert_true(g_str_has_suffix(curd[0], big));
}

static void test_reopen(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "reopen.log", NULL);
    g_autofree char *moved = g_build_filename(f->dir, "reopen.log.moved", NULL);
    g_autoptr(PbLog) log = pb_log_new("policy");
    g_assert_true(pb_log_configure(log, path, 2, 0, FALSE, FALSE, &error));
    pb_log_write(log, 0, "before");
    /* logrotate moves the file, then asks for a reopen (SIGHUP -> reconfigure). */
    g_assert_cmpint(g_rename(path, moved), ==, 0);
    g_assert_true(pb_log_configure(log, path, 2, 0, FALSE, FALSE, &error));
    pb_log_write(log, 0, "after");

    g_auto(GStrv) a = read_lines(moved);
    g_auto(GStrv) b = read_lines(path);
    g_assert_cmpuint(g_strv_length(a), ==, 1);
    g_assert_true(g_str_has_suffix(a[0], "before"));
    g_assert_cmpuint(g_strv_length(b), ==, 1);
    g_assert_true(g_str_has_suffix(b[0], "after"));

    /* path NULL: no file any more. */
    g_assert_true(pb_log_configure(log, NULL, 2, 0, FALSE, FALSE, &error));
    g_assert_null(pb_log_path(log));
    pb_log_write(log, 0, "nowhere");
    g_auto(GStrv) c = read_lines(path);
    g_assert_cmpuint(g_strv_length(c), ==, 1);
}

/* Runs fn with stderr redirected to a file; returns what was written. */
static char *capture_stderr(const char *dir, void (*fn)(gpointer), gpointer data)
{
    g_autofree char *path = g_build_filename(dir, "stderr.txt", NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    int saved = dup(STDERR_FILENO);
    g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);
    close(fd);
    fn(data);
    g_assert_cmpint(dup2(saved, STDERR_FILENO), ==, STDERR_FILENO);
    close(saved);
    char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_remove(path);
    return text;
}

static void write_two(gpointer data)
{
    pb_log_write(data, 1, "to stderr");
    pb_log_write(data, 3, "filtered");
}

static void test_unwritable(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    /* A regular file where a directory should be: fails even for root. */
    g_autofree char *blocker = g_build_filename(f->dir, "blocker", NULL);
    g_assert_true(g_file_set_contents(blocker, "", 0, NULL));
    g_autofree char *path = g_build_filename(blocker, "x.log", NULL);

    g_autoptr(PbLog) log = pb_log_new("tftp");
    g_assert_false(pb_log_configure(log, path, 2, 0, TRUE, FALSE, &error));
    g_assert_nonnull(error);
    if (strstr(error->message, path) == NULL)
        g_error("%s", error->message);

    g_autofree char *text = capture_stderr(f->dir, write_two, log);
    g_autoptr(GRegex) re =
        g_regex_new("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z \\[tftp\\] WARNING: "
                    "to stderr\n$",
                    0, 0, NULL);
    if (!g_regex_match(re, text, 0, NULL))
        g_error("stderr: %s", text);
}

static void test_ratelimit(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(f->dir, "rate.log", NULL);
    g_autoptr(PbLog) log = pb_log_new("tftp");
    g_assert_true(pb_log_configure(log, path, 2, 0, FALSE, FALSE, &error));

    guint allowed = 0, other = 0;
    for (int i = 0; i < 10; i++) {
        allowed += pb_log_ratelimit(log, "bad packet", 3);
        other += pb_log_ratelimit(log, "other", 5);
    }
    g_assert_cmpuint(allowed, ==, 3);
    g_assert_cmpuint(other, ==, 5);
    g_auto(GStrv) none = read_lines(path);
    g_assert_cmpuint(g_strv_length(none), ==, 0);

    /* Wait for the next one-second window (bounded): each refused call is counted too. */
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    guint refused = 7;
    while (!pb_log_ratelimit(log, "bad packet", 3)) {
        if (g_get_monotonic_time() > deadline)
            g_error("the rate limit never opened a new window");
        refused++;
        g_usleep(10 * 1000);
    }
    g_auto(GStrv) lines = read_lines(path);
    g_assert_cmpuint(g_strv_length(lines), ==, 1);
    g_autofree char *want =
        g_strdup_printf("WARNING: %u messages like \"bad packet\" suppressed (limit 3/s)", refused);
    g_assert_true(g_str_has_suffix(lines[0], want));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    umask(022); /* the 0640 check below must not depend on the caller's umask */
#define ADD(name, fn) g_test_add(name, Fixture, NULL, setup, fn, teardown)
    ADD("/log/levels", test_levels);
    ADD("/log/format", test_format);
    ADD("/log/rotation", test_rotation);
    ADD("/log/rotation-fails", test_rotation_fails);
    ADD("/log/severity", test_severity);
    ADD("/log/reopen", test_reopen);
    ADD("/log/unwritable", test_unwritable);
    ADD("/log/ratelimit", test_ratelimit);
    return g_test_run();
}
