/* placeholder */
typedef int pb_placeholder_config_;
