## lib/pq: what libpreboot-pg and the policy plugin's PostgreSQL store share (libpq): the
## connection string with its password file, one-line messages, schema migrations, queries
## with a deadline. Built with libpq only (ENABLE_PG).
if ENABLE_PG
noinst_LTLIBRARIES += lib/pq/libpbpq.la
lib_pq_libpbpq_la_SOURCES = lib/pq/pq-conn.h lib/pq/pq-conn.c
lib_pq_libpbpq_la_CPPFLAGS = $(LIB_CPPFLAGS)
lib_pq_libpbpq_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(PQ_CFLAGS)
lib_pq_libpbpq_la_LIBADD = $(PQ_LIBS) $(GLIB_LIBS)
PB_PQ_LIBS = lib/pq/libpbpq.la $(PQ_LIBS) $(GLIB_LIBS)
endif
EXTRA_DIST += lib/pq/pq-conn.h lib/pq/pq-conn.c
if ENABLE_PG
check_PROGRAMS += tests/test-pq-conn
TESTS += tests/test-pq-conn
tests_test_pq_conn_SOURCES = tests/test-pq-conn.c
tests_test_pq_conn_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/pq $(PQ_CFLAGS)
tests_test_pq_conn_LDADD = $(PB_PQ_LIBS)
endif
EXTRA_DIST += tests/test-pq-conn.c
