## Each plugin is one folder with its own local.mk, built unless configure was told
## --disable-NAME (then its module and its tests are neither built nor run; automake still
## puts every source in the tarball).
if BUILD_TFTP
include plugins/tftp/local.mk
endif
if BUILD_PROXYDHCP
include plugins/proxydhcp/local.mk
endif
if BUILD_POLICY
include plugins/policy/local.mk
endif
if BUILD_HTTP
include plugins/http/local.mk
endif
if BUILD_MULTICAST
include plugins/multicast/local.mk
endif
