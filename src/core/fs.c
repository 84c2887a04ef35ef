/* fs.c — the POSIX implementation of kp_fs_t, a fault-injecting wrapper, and helpers. */
#include "core/fs.h"

#include "core/buf.h"
#include "core/logging.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int p_open(const char *path, int flags, int mode)
{
    return open(path, flags | O_CLOEXEC, mode);
}
static ssize_t p_pread(int fd, void *buf, size_t len, int64_t pos)
{
    return pread(fd, buf, len, (off_t)pos);
}
static ssize_t p_pwrite(int fd, const void *buf, size_t len, int64_t pos)
{
    return pwrite(fd, buf, len, (off_t)pos);
}
static int p_ftruncate(int fd, int64_t len)
{
    return ftruncate(fd, (off_t)len);
}
static int64_t p_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) < 0 ? -1 : (int64_t)st.st_size;
}
static int p_mkdir(const char *path, int mode)
{
    return mkdir(path, (mode_t)mode);
}

const kp_fs_t kp_fs_posix = {
    .open = p_open,
    .close = close,
    .pread = p_pread,
    .pwrite = p_pwrite,
    .fdatasync = fdatasync,
    .fsync = fsync,
    .ftruncate = p_ftruncate,
    .size = p_size,
    .rename = rename,
    .unlink = unlink,
    .mkdir = p_mkdir,
};

const kp_fs_t *kp_fs = &kp_fs_posix;

kp_fs_faults_t kp_fs_faults = {-1, 0, 0, 0};

static int dead(void)
{
    if (!atomic_load_explicit(&kp_fs_faults.fail_eio, memory_order_relaxed)) return 0;
    errno = EIO;
    return 1;
}

static int f_open(const char *path, int flags, int mode)
{
    return dead() ? -1 : p_open(path, flags, mode);
}
static ssize_t f_pread(int fd, void *buf, size_t len, int64_t pos)
{
    return dead() ? -1 : p_pread(fd, buf, len, pos);
}
static int f_ftruncate(int fd, int64_t len)
{
    return dead() ? -1 : p_ftruncate(fd, len);
}
static int f_rename(const char *from, const char *to)
{
    return dead() ? -1 : rename(from, to);
}
static int f_unlink(const char *path)
{
    return dead() ? -1 : unlink(path);
}
static int f_mkdir(const char *path, int mode)
{
    return dead() ? -1 : p_mkdir(path, mode);
}

static ssize_t f_pwrite(int fd, const void *buf, size_t len, int64_t pos)
{
    if (dead()) return -1;
    if (kp_fs_faults.write_budget >= 0) {
        if (kp_fs_faults.write_budget == 0) {
            errno = ENOSPC;
            return -1;
        }
        if ((int64_t)len > kp_fs_faults.write_budget) len = (size_t)kp_fs_faults.write_budget;
    }
    ssize_t n = pwrite(fd, buf, len, (off_t)pos);
    if (n > 0 && kp_fs_faults.write_budget >= 0) kp_fs_faults.write_budget -= n;
    return n;
}

static void stall(void)
{
    while (atomic_load(&kp_fs_faults.stall_fsync) && !dead()) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static int f_fdatasync(int fd)
{
    stall();
    if (kp_fs_faults.fail_fsync || dead()) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int f_fsync(int fd)
{
    stall();
    if (kp_fs_faults.fail_fsync || dead()) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

const kp_fs_t kp_fs_faulty = {
    .open = f_open,
    .close = close,
    .pread = f_pread,
    .pwrite = f_pwrite,
    .fdatasync = f_fdatasync,
    .fsync = f_fsync,
    .ftruncate = f_ftruncate,
    .size = p_size,
    .rename = f_rename,
    .unlink = f_unlink,
    .mkdir = f_mkdir,
};

/* The control file's thread (KPOOL_FS_FAULTS): reads it every 100 ms, for the process's
 * life (detached; a test hook, never armed in production). */
static void *faults_watch(void *arg)
{
    const char *path = arg;
    char armed[16] = "";
    for (;;) {
        char buf[16] = "";
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof(buf) - 1);
            buf[n > 0 ? n : 0] = 0;
            close(fd);
        }
        atomic_store(&kp_fs_faults.fail_eio, !strncmp(buf, "eio", 3));
        kp_fs_faults.fail_fsync = !strncmp(buf, "fsync", 5);
        atomic_store(&kp_fs_faults.stall_fsync, !strncmp(buf, "stall", 5));
        buf[strcspn(buf, "\n")] = 0;
        if (strcmp(buf, armed)) { /* tests wait for this line to know the fault is on */
            kp_warn("storage", "KPOOL_FS_FAULTS: now %s", *buf ? buf : "off");
            snprintf(armed, sizeof(armed), "%s", buf);
        }
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int kp_fs_faults_from_env(void)
{
    const char *path = getenv("KPOOL_FS_FAULTS");
    if (!path || !*path) return 0;
    kp_fs = &kp_fs_faulty;
    pthread_t t;
    char *copy = strdup(path);
    if (!copy || pthread_create(&t, NULL, faults_watch, copy) != 0) {
        free(copy);
        return 0;
    }
    pthread_detach(t);
    return 1;
}

int kp_fs_fsync_dir(const char *dir)
{
    int fd = kp_fs->open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return -1;
    int rc = kp_fs->fsync(fd);
    kp_fs->close(fd);
    return rc;
}

int kp_fs_mkdirs(const char *path, int mode)
{
    char tmp[PATH_MAX];
    if (strlen(path) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (kp_fs->mkdir(tmp, mode) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (kp_fs->mkdir(tmp, mode) < 0 && errno != EEXIST) return -1;
    return 0;
}

int kp_fs_dir_make_private(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if ((st.st_mode & 077) == 0) return 0;
    if (chmod(path, KP_FS_DIR_MODE) < 0) return -1;
    return 1;
}

int kp_fs_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : kp_fs->unlink(path);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child[PATH_MAX];
        snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (kp_fs_remove_tree(child) < 0) rc = -1;
        } else if (kp_fs->unlink(child) < 0) {
            rc = -1;
        }
    }
    closedir(d);
    if (rmdir(path) < 0) rc = -1;
    return rc;
}

int kp_fs_pwrite_all(int fd, const void *buf, size_t len, int64_t pos)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = kp_fs->pwrite(fd, p, len, pos);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        pos += n;
    }
    return 0;
}

int kp_fs_pread_all(int fd, void *buf, size_t len, int64_t pos)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = kp_fs->pread(fd, p, len, pos);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        pos += n;
    }
    return 0;
}

int kp_fs_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    kp_fs->unlink(tmp); /* a leftover keeps its old mode through O_TRUNC */
    int fd = kp_fs->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, KP_FS_FILE_MODE);
    if (fd < 0) return -1;
    if (kp_fs_pwrite_all(fd, data, len, 0) < 0 || kp_fs->fsync(fd) < 0) {
        int e = errno;
        kp_fs->close(fd);
        kp_fs->unlink(tmp);
        errno = e;
        return -1;
    }
    kp_fs->close(fd);
    if (kp_fs->rename(tmp, path) < 0) return -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        return kp_fs_fsync_dir(dir[0] ? dir : "/");
    }
    return kp_fs_fsync_dir(".");
}

int kp_fs_read_all(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    int fd = kp_fs->open(path, O_RDONLY, 0);
    if (fd < 0) return -1;
    int64_t size = kp_fs->size(fd);
    if (size < 0 || (uint64_t)size > max) {
        kp_fs->close(fd);
        errno = size < 0 ? errno : EFBIG;
        return -1;
    }
    uint8_t *buf = kp_xmalloc((size_t)size + 1);
    if (kp_fs_pread_all(fd, buf, (size_t)size, 0) < 0) {
        int e = errno;
        free(buf);
        kp_fs->close(fd);
        errno = e;
        return -1;
    }
    kp_fs->close(fd);
    buf[size] = 0;
    *out = buf;
    *outlen = (size_t)size;
    return 0;
}

int64_t kp_fs_nofile_raise(int64_t cap, int64_t *before)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        *before = -1;
        return -1;
    }
    *before = rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > (rlim_t)cap) want = (rlim_t)cap;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = old;
    }
    return rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur;
}
