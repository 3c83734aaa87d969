/* placeholder */
typedef int pb_placeholder_log_;
