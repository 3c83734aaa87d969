/* placeholder */
typedef int pb_placeholder_control_;
