/* placeholder */
typedef int pb_placeholder_conf_legacy_;
