/* placeholder */
typedef int pb_placeholder_loader_;
