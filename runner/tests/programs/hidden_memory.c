/* Memory a /proc watchdog can miss or miscount, one mode each (sizes in MiB, times in ms):
 *   zombie-leader MIB MS   a worker thread holds MIB while the main thread has called pthread_exit
 *   clone-vm N MIB MS      N processes share one address space (clone(CLONE_VM) without CLONE_THREAD) holding MIB
 *   memfd MIB MS           MIB written into a memfd that nothing maps, held
 *   clear-refs MIB MS      touches MIB, holds MS, frees it, writes 5 to /proc/self/clear_refs, holds MS again
 *   ignored-child MIB MS   ignores SIGCHLD; a child touches MIB and exits at once; the parent holds MS
 *   file-map PATH MS       maps a file read-only, reads every page, holds
 *   sysv MIB               creates a System V segment of MIB, touches it, detaches and exits without removing it */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void hold(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static char *touched(size_t bytes) {
    char *block = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) exit(2);
    for (size_t at = 0; at < bytes; at += 4096) block[at] = 1;
    return block;
}

static long hold_ms;
static size_t held_bytes;

static void *worker(void *unused) {
    (void)unused;
    touched(held_bytes);
    hold(hold_ms);
    return NULL;
}

static int sleeper(void *unused) {
    (void)unused;
    hold(hold_ms);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[1];
    size_t mib = 1024 * 1024;
    if (!strcmp(mode, "zombie-leader")) {
        held_bytes = atol(argv[2]) * mib;
        hold_ms = atol(argv[3]);
        pthread_t thread;
        pthread_create(&thread, NULL, worker, NULL);
        pthread_exit(NULL);
    }
    if (!strcmp(mode, "clone-vm")) {
        int n = atoi(argv[2]);
        hold_ms = atol(argv[4]);
        touched(atol(argv[3]) * mib);
        for (int i = 1; i < n; i++) {
            char *stack = malloc(1 << 16);
            if (clone(sleeper, stack + (1 << 16), CLONE_VM | SIGCHLD, NULL) < 0) return 2;
        }
        hold(hold_ms);
        while (wait(NULL) > 0) {}
        return 0;
    }
    if (!strcmp(mode, "memfd")) {
        int fd = memfd_create("held", 0);
        char chunk[65536];
        memset(chunk, 7, sizeof chunk);
        for (long written = 0; written < atol(argv[2]) * (long)mib; written += sizeof chunk)
            if (write(fd, chunk, sizeof chunk) != sizeof chunk) return 2;
        hold(atol(argv[3]));
        return 0;
    }
    if (!strcmp(mode, "clear-refs")) {
        size_t bytes = atol(argv[2]) * mib;
        char *block = touched(bytes);
        hold(atol(argv[3]));
        munmap(block, bytes);
        int fd = open("/proc/self/clear_refs", O_WRONLY);
        if (fd < 0 || write(fd, "5", 1) != 1) return 2;
        close(fd);
        hold(atol(argv[3]));
        return 0;
    }
    if (!strcmp(mode, "ignored-child")) {
        signal(SIGCHLD, SIG_IGN);
        if (fork() == 0) {
            touched(atol(argv[2]) * mib);
            _exit(0);
        }
        hold(atol(argv[3]));
        return 0;
    }
    if (!strcmp(mode, "file-map")) {
        int fd = open(argv[2], O_RDONLY);
        struct stat stat;
        if (fd < 0 || fstat(fd, &stat) != 0) return 2;
        volatile char *file = mmap(NULL, stat.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (file == MAP_FAILED) return 2;
        long sum = 0;
        for (off_t at = 0; at < stat.st_size; at += 4096) sum += file[at];
        hold(atol(argv[3]));
        return sum == 12345;
    }
    if (!strcmp(mode, "sysv")) {
        size_t bytes = atol(argv[2]) * mib;
        int id = shmget(IPC_PRIVATE, bytes, IPC_CREAT | 0600);
        char *segment = shmat(id, NULL, 0);
        if (id < 0 || segment == (void *)-1) return 2;
        for (size_t at = 0; at < bytes; at += 4096) segment[at] = 1;
        shmdt(segment);
        return 0;
    }
    return 2;
}
