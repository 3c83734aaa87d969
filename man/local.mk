## Man pages: man/NAME.SECTION.in templates, filled with the configured paths at make time.
## A page is added with its own block: man_MANS += man/NAME.N, EXTRA_DIST += man/NAME.N.in.
man/%: man/%.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && $(do_subst) <$< >$@

## prebootd(8)
man_MANS += man/prebootd.8
EXTRA_DIST += man/prebootd.8.in
CLEANFILES += man/prebootd.8

## preboot.yaml(5)
man_MANS += man/preboot.yaml.5
EXTRA_DIST += man/preboot.yaml.5.in
CLEANFILES += man/preboot.yaml.5

## preboot-legacy.conf(5)
man_MANS += man/preboot-legacy.conf.5
EXTRA_DIST += man/preboot-legacy.conf.5.in
CLEANFILES += man/preboot-legacy.conf.5
