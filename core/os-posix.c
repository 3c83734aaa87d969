/* placeholder */
typedef int pb_placeholder_os_posix_;
