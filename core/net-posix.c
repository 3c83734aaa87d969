/* placeholder */
typedef int pb_placeholder_net_posix_;
