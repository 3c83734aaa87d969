## plugins/proxydhcp (not built yet)
