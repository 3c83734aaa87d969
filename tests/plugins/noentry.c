/* noentry.c - a loadable module without the preboot entry point. */
int noentry_something(void);
int noentry_something(void)
{
    return 42;
}
