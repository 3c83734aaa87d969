## backends/pg: libpreboot-pg, the imaging backend on PostgreSQL (libpq) shared by several
## imaging servers; chunks stay in lib/image's store on each server. Optional (ENABLE_PG).
if ENABLE_PG
plugin_LTLIBRARIES += backends/pg/libpreboot-pg.la
backends_pg_libpreboot_pg_la_SOURCES = backends/pg/pg-backend.c
backends_pg_libpreboot_pg_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image \
	-I$(top_srcdir)/lib/backend -I$(top_srcdir)/lib/pq
backends_pg_libpreboot_pg_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CFLAGS) $(PQ_CFLAGS)
## -z nodelete: as libpreboot-local (lib/image's per-thread zstd contexts).
backends_pg_libpreboot_pg_la_LDFLAGS = -module -avoid-version -no-undefined -shared \
	-export-symbols-regex '_LTX_preboot_backend_entry$$' -Wl,-z,nodelete
backends_pg_libpreboot_pg_la_LIBADD = lib/backend/libpbbackend.la lib/pq/libpbpq.la \
	lib/image/libpbimage.la $(IMAGE_LIBS) $(PQ_LIBS) \
	$(GLIB_LIBS)
endif
## Two prebootd on one private PostgreSQL cluster the test starts (root; skips without
## Debian's postgresql binaries).
if ENABLE_PG
TESTS += tests/test-pg-backend.sh
endif
EXTRA_DIST += tests/test-pg-backend.sh tests/pg-cluster.sh
## The policy plugin's assignments and one-shot work shared through the same database.
if ENABLE_PG
if BUILD_HTTP
TESTS += tests/test-policy-pg.sh
endif
endif
EXTRA_DIST += tests/test-policy-pg.sh
## The backend ABI against a built backend by its path (run by test-pg-backend.sh against
## libpreboot-local and libpreboot-pg).
if ENABLE_PG
check_PROGRAMS += tests/test-backend-abi
tests_test_backend_abi_SOURCES = tests/test-backend-abi.c
tests_test_backend_abi_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
tests_test_backend_abi_LDADD = lib/image/libpbimage.la $(IMAGE_LIBS) $(GLIB_LIBS) -ldl
endif
EXTRA_DIST += tests/test-backend-abi.c
## bench/pg.sh builds its load generator itself (not run by make check).
EXTRA_DIST += bench/pg.sh bench/pg-bench.c
## The policy store's shared state through a fake in memory (no database needed).
check_PROGRAMS += tests/test-policy-shared
TESTS += tests/test-policy-shared
tests_test_policy_shared_SOURCES = tests/test-policy-shared.c
tests_test_policy_shared_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/policy \
	-I$(top_srcdir)/lib/image $(SQLITE_CFLAGS)
tests_test_policy_shared_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS) $(SQLITE_LIBS)
