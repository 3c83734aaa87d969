## man pages
