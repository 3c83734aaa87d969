## etc: the systemd unit, the SysV init script and its defaults file, filled with the
## configured paths (do_subst). The lead's etc/preboot.yaml.in has its own block.
if !OS_WIN32
initddir = $(sysconfdir)/init.d
initd_SCRIPTS = etc/init.d/preboot
defaultdir = $(sysconfdir)/default
dist_default_DATA = etc/default/preboot
if HAVE_SYSTEMD
systemdsystemunit_DATA = etc/prebootd.service
endif
endif
EXTRA_DIST += etc/prebootd.service.in etc/init.d/preboot.in
CLEANFILES += etc/prebootd.service etc/init.d/preboot

etc/prebootd.service: etc/prebootd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && $(do_subst) <$(srcdir)/etc/prebootd.service.in >$@
etc/init.d/preboot: etc/init.d/preboot.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc/init.d && \
	$(do_subst) <$(srcdir)/etc/init.d/preboot.in >$@ && chmod +x $@

## The default configuration, and the TFTP root it serves from. An existing preboot.yaml
## is never overwritten: the new one is installed as preboot.yaml.dist beside it.
EXTRA_DIST += etc/preboot.yaml.in
CLEANFILES += etc/preboot.yaml
etc/preboot.yaml: etc/preboot.yaml.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && $(do_subst) <$(srcdir)/etc/preboot.yaml.in >$@
all-local: etc/preboot.yaml
install-data-local: etc/preboot.yaml
	$(MKDIR_P) '$(DESTDIR)$(pkgsysconfdir)' '$(DESTDIR)$(pkgstatedir)/tftp' '$(DESTDIR)$(pkglogdir)'
	if test -f '$(DESTDIR)$(pkgsysconfdir)/preboot.yaml'; then \
	  $(INSTALL_DATA) etc/preboot.yaml '$(DESTDIR)$(pkgsysconfdir)/preboot.yaml.dist'; \
	else \
	  $(INSTALL_DATA) etc/preboot.yaml '$(DESTDIR)$(pkgsysconfdir)/preboot.yaml'; \
	fi
	$(preboot_user_hook)

## The system user the shipped preboot.yaml names (user: preboot), made only by a real
## install as root: a DESTDIR install is a package being built, whose maintainer scripts
## create users (Debian's postinst), and a user's own install cannot. distcheck installs
## into a throw-away prefix as whoever runs it: configure --disable-system-user there.
AM_DISTCHECK_CONFIGURE_FLAGS = --disable-system-user
EXTRA_DIST += etc/preboot-user.sh
if !OS_WIN32
preboot_user_hook = @if test -z '$(DESTDIR)' && test "`id -u`" = 0 && \
	     test '$(enable_system_user)' = yes; then \
	  $(SHELL) $(srcdir)/etc/preboot-user.sh '$(pkgstatedir)' '$(pkglogdir)'; \
	else \
	  echo "not creating the system user preboot (DESTDIR set, not root, or" \
	       "--disable-system-user):" \
	       "etc/preboot-user.sh does it"; \
	fi
else
preboot_user_hook =
endif
## An edited preboot.yaml stays; an untouched one goes.
uninstall-local:
	rm -f '$(DESTDIR)$(pkgsysconfdir)/preboot.yaml.dist'
	if cmp -s etc/preboot.yaml '$(DESTDIR)$(pkgsysconfdir)/preboot.yaml'; then \
	  rm -f '$(DESTDIR)$(pkgsysconfdir)/preboot.yaml'; \
	fi
