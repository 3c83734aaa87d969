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
