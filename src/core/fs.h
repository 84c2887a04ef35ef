/*
 * fs.h — the file-system calls kpool makes (storage, metadata journals, control-plane and
 * registry files), through a table so tests can inject faults (a short write, a failed fsync,
 * a full disk) the way SQLite's VFS does. It lives in core/ because every layer uses it.
 *
 * kp_fs points at the real implementation; tests swap in kp_fs_faulty after arming it.
 * Every call keeps the libc convention (-1 and errno).
 */
#ifndef KP_FS_H
#define KP_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct kp_fs {
    int (*open)(const char *path, int flags, int mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t len, int64_t pos);
    ssize_t (*pwrite)(int fd, const void *buf, size_t len, int64_t pos);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, int64_t len);
    int64_t (*size)(int fd); /* -1 on error */
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, int mode);
} kp_fs_t;

extern const kp_fs_t kp_fs_posix;
extern const kp_fs_t *kp_fs;

/* Fault injection (tests): after `write_budget` more bytes, writes fail with ENOSPC (a write
 * crossing the budget is short); fsync fails with EIO while fail_fsync is set. -1 disarms.
 * While fail_eio is set the disk is dead: every call that touches it (open, read, write,
 * fsync, truncate, rename, unlink, mkdir) fails with EIO, as a failed drive answers. While
 * stall_fsync is set, fsync blocks (a slow disk) until it is cleared. */
typedef struct kp_fs_faults {
    int64_t write_budget;
    int fail_fsync;
    _Atomic int fail_eio;
    _Atomic int stall_fsync;
} kp_fs_faults_t;
extern kp_fs_faults_t kp_fs_faults;
extern const kp_fs_t kp_fs_faulty;

/* A whole process under test (integration tests): when the environment names a control file
 * in KPOOL_FS_FAULTS, kp_fs becomes kp_fs_faulty and a thread reads the file every 100 ms:
 * "eio" arms fail_eio, "fsync" fail_fsync, "stall" stall_fsync, anything else (or no file)
 * disarms them. Returns 1
 * when armed this way (the caller logs it), 0 when the variable is unset. Call once, early. */
int kp_fs_faults_from_env(void);

/* Modes of everything the broker creates under log.dirs: topic data is private to the user
 * the broker runs as (like control/ and pki/), so another local account cannot read any
 * team's records. The umask can only narrow these further. */
#define KP_FS_DIR_MODE  0700
#define KP_FS_FILE_MODE 0600

/* Raises the process's soft open-file limit (RLIMIT_NOFILE) to its hard limit, at most
 * `cap`: a broker keeps one descriptor per partition log and per connection, and the soft
 * limit systemd and login shells give (1,024) is far below what the hard limit allows, as
 * Redis and Go programs do at start. Returns the soft limit in force afterwards; *before gets
 * the one found (both as they were when the call cannot raise). */
int64_t kp_fs_nofile_raise(int64_t cap, int64_t *before);

/* Helpers built on the table. */
int kp_fs_fsync_dir(const char *dir);
/* mkdir -p; 0 or -1 */
int kp_fs_mkdirs(const char *path, int mode);
/* rm -rf; 0 or -1 */
int kp_fs_remove_tree(const char *path);
/* Makes an existing directory private (KP_FS_DIR_MODE) when it grants any group or other
 * access; 1 if it changed the mode, 0 if already private, -1 with errno. Only the directory
 * itself: without search permission on it nothing beneath can be reached. */
int kp_fs_dir_make_private(const char *path);
/* Writes data to path atomically (mode KP_FS_FILE_MODE): temp file, fsync, rename, fsync of
 * the directory. */
int kp_fs_write_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file (at most max bytes) into a malloc'd buffer. */
int kp_fs_read_all(const char *path, size_t max, uint8_t **out, size_t *outlen);
/* Writes all of buf at pos, retrying short writes. */
int kp_fs_pwrite_all(int fd, const void *buf, size_t len, int64_t pos);
/* Reads exactly len bytes at pos; 0, or -1 on error or EOF. */
int kp_fs_pread_all(int fd, void *buf, size_t len, int64_t pos);

#endif
