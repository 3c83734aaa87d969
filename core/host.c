/* placeholder */
typedef int pb_placeholder_host_;
