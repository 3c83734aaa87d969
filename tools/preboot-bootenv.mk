## preboot-bootenv(8): builds the preboot environment (kernel + initrd) from the
## distribution's packages. A shell script; `make install` installs it but never runs it.
## Its /init is installed as $(pkgdatadir)/bootenv-init.sh; in the build tree a copy sits
## beside the script, so tools/preboot-bootenv runs uninstalled too (the e2e test does).
sbin_SCRIPTS = tools/preboot-bootenv
pkgdata_DATA = tools/bootenv-init.sh
CLEANFILES += tools/preboot-bootenv tools/bootenv-init.sh
EXTRA_DIST += tools/preboot-bootenv.in tools/preboot-bootenv-init.sh tools/preboot-bootenv.mk

tools/preboot-bootenv: tools/preboot-bootenv.in Makefile
	$(AM_V_GEN)$(MKDIR_P) tools && $(do_subst) -e 's|@pkgdatadir[@]|$(pkgdatadir)|g' \
	    <$(srcdir)/tools/preboot-bootenv.in >$@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@

## The name it has once installed, copied from the source (not generated: no paths in it).
tools/bootenv-init.sh: tools/preboot-bootenv-init.sh
	$(AM_V_GEN)$(MKDIR_P) tools && cp $(srcdir)/tools/preboot-bootenv-init.sh $@

## preboot-bootenv(8)
man_MANS += man/preboot-bootenv.8
EXTRA_DIST += man/preboot-bootenv.8.in
CLEANFILES += man/preboot-bootenv.8

## End to end (root, namespaces, QEMU): the environment PXE-boots and images machines, and
## a room of three in one multicast session (step 5). `make check-e2e`; it runs its first
## half without the imaging plugin and says why it skips the rest.
EXTRA_DIST += tests/e2e/imaging-e2e.sh tests/e2e/golden-disk.sh
if ENABLE_IMAGE
if BUILD_HTTP
if BUILD_PROXYDHCP
if BUILD_TFTP
check-e2e-imaging: core/prebootd$(EXEEXT) tools/prebootctl$(EXEEXT) tools/preboot-img$(EXEEXT) \
		tools/preboot-bootenv tools/bootenv-init.sh \
		plugins/policy/policy.la plugins/http/http.la \
		plugins/proxydhcp/proxydhcp.la plugins/tftp/tftp.la plugins/multicast/multicast.la
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	    $(SHELL) $(top_srcdir)/tests/e2e/imaging-e2e.sh
CHECK_E2E += check-e2e-imaging
endif
endif
endif
endif
