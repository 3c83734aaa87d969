/* placeholder */
typedef int pb_placeholder_net_common_;
