/* placeholder */
typedef int pb_placeholder_param_;
