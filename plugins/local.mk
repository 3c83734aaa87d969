## Each plugin is one folder with its own local.mk.
include plugins/tftp/local.mk
include plugins/proxydhcp/local.mk
include plugins/policy/local.mk
include plugins/http/local.mk
