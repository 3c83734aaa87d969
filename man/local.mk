## Man pages: man/NAME.SECTION.in templates, filled with the configured paths at make time.
## A page is added with its own block: man_MANS += man/NAME.N, EXTRA_DIST += man/NAME.N.in.
man/%: man/%.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && $(do_subst) <$< >$@

## prebootd(8)
man_MANS += man/prebootd.8
EXTRA_DIST += man/prebootd.8.in
CLEANFILES += man/prebootd.8

## preboot-policy(8), preboot-rules.yaml(5), preboot-http(8)
man_MANS += man/preboot-policy.8 man/preboot-rules.yaml.5 man/preboot-http.8
EXTRA_DIST += man/preboot-policy.8.in man/preboot-rules.yaml.5.in man/preboot-http.8.in
CLEANFILES += man/preboot-policy.8 man/preboot-rules.yaml.5 man/preboot-http.8

## preboot.yaml(5)
man_MANS += man/preboot.yaml.5
EXTRA_DIST += man/preboot.yaml.5.in
CLEANFILES += man/preboot.yaml.5

## preboot-legacy.conf(5)
man_MANS += man/preboot-legacy.conf.5
EXTRA_DIST += man/preboot-legacy.conf.5.in
CLEANFILES += man/preboot-legacy.conf.5

## prebootctl(8)
man_MANS += man/prebootctl.8
EXTRA_DIST += man/prebootctl.8.in
CLEANFILES += man/prebootctl.8

## preboot-tftp(8)
man_MANS += man/preboot-tftp.8
EXTRA_DIST += man/preboot-tftp.8.in
CLEANFILES += man/preboot-tftp.8

## preboot-proxydhcp(8)
man_MANS += man/preboot-proxydhcp.8
EXTRA_DIST += man/preboot-proxydhcp.8.in
CLEANFILES += man/preboot-proxydhcp.8

## preboot-img(8), preboot-image(5)
if ENABLE_IMAGE
man_MANS += man/preboot-img.8 man/preboot-image.5
endif
EXTRA_DIST += man/preboot-img.8.in man/preboot-image.5.in
CLEANFILES += man/preboot-img.8 man/preboot-image.5

## preboot-imaging(8)
if ENABLE_IMAGE
man_MANS += man/preboot-imaging.8
endif
EXTRA_DIST += man/preboot-imaging.8.in
CLEANFILES += man/preboot-imaging.8

## preboot-pg(8): libpreboot-pg, the PostgreSQL imaging backend (installed with it or not)
man_MANS += man/preboot-pg.8
EXTRA_DIST += man/preboot-pg.8.in
CLEANFILES += man/preboot-pg.8

## preboot-multicast(8)
if ENABLE_IMAGE
man_MANS += man/preboot-multicast.8
endif
EXTRA_DIST += man/preboot-multicast.8.in
CLEANFILES += man/preboot-multicast.8
