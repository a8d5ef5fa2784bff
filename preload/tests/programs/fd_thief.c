/* A program that owns every descriptor from 3 up: it closes them all, opens its data file (argv[1]) and puts it at
 * every number up to 1023 too (wherever a library might keep a channel), allocates and frees a block 1000 times over
 * about a second, so that heap samples fall due, then writes one line of its own. Its file must hold only that line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    syscall(SYS_close_range, 3, ~0U, 0);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 2;
    for (int number = fd + 1; number < 1024; number++) dup2(fd, number);
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 1000; i++) {
        free(malloc(1000 + i));
        nanosleep(&pause, NULL);
    }
    const char line[] = "the program's own line\n";
    return write(fd, line, sizeof line - 1) != sizeof line - 1;
}
