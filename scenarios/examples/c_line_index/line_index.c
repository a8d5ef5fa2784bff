/* A log indexer in C, measured through memproof's preload library (no code of memproof's in it).

   `line_index TECHNIQUE BYTES`: writes a log of about BYTES bytes (lines of 100 to 300 bytes) to `app.log` in the
   current directory, then counts its lines and finds its longest line:

   - read_whole_file (the bug): reads the whole file into one buffer grown with realloc, then keeps a pointer to
     every line in an array grown the same way: heap in proportion to the log.
   - read_in_chunks (the fix): reads 64 KiB at a time and keeps only a line's running length.

   Both print the same `lines longest` pair on stdout; the program exits 1 if writing or reading fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_log(const char *path, long bytes) {
    FILE *log = fopen(path, "w");
    if (!log) return -1;
    char line[320];
    unsigned seed = 12345;
    long written = 0;
    while (written < bytes) {
        seed = seed * 1103515245u + 12345u;
        int length = 100 + (int)((seed >> 16) % 200);
        int n = snprintf(line, sizeof line, "%ld ", written);
        memset(line + n, 'x', (size_t)(length - n - 1));
        line[length - 1] = '\n';
        if (fwrite(line, 1, (size_t)length, log) != (size_t)length) return -1;
        written += length;
    }
    return fclose(log);
}

static int read_whole_file(FILE *log, long *lines, long *longest) {
    size_t capacity = 4096, length = 0;
    char *data = malloc(capacity);
    if (!data) return -1;
    size_t got;
    while ((got = fread(data + length, 1, capacity - length, log)) > 0) {
        length += got;
        if (length == capacity) {
            capacity *= 2;
            char *grown = realloc(data, capacity);
            if (!grown) return -1;
            data = grown;
        }
    }
    size_t count = 0, slots = 1024;
    char **starts = malloc(slots * sizeof *starts);
    if (!starts) return -1;
    char *start = data;
    for (char *at = data; at < data + length; at++) {
        if (*at != '\n') continue;
        if (count == slots) {
            slots *= 2;
            char **grown = realloc(starts, slots * sizeof *starts);
            if (!grown) return -1;
            starts = grown;
        }
        starts[count++] = start;
        if (at + 1 - start > *longest) *longest = at + 1 - start;
        start = at + 1;
    }
    *lines = (long)count;
    free(starts);
    free(data);
    return 0;
}

static int read_in_chunks(FILE *log, long *lines, long *longest) {
    char *chunk = malloc(64 * 1024);
    if (!chunk) return -1;
    long current = 0;
    size_t got;
    while ((got = fread(chunk, 1, 64 * 1024, log)) > 0) {
        for (size_t i = 0; i < got; i++) {
            current++;
            if (chunk[i] == '\n') {
                (*lines)++;
                if (current > *longest) *longest = current;
                current = 0;
            }
        }
    }
    free(chunk);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: line_index read_whole_file|read_in_chunks BYTES\n");
        return 2;
    }
    long bytes = atol(argv[2]);
    if (write_log("app.log", bytes) != 0) {
        perror("app.log");
        return 1;
    }
    FILE *log = fopen("app.log", "r");
    if (!log) {
        perror("app.log");
        return 1;
    }
    long lines = 0, longest = 0;
    int failed;
    if (strcmp(argv[1], "read_whole_file") == 0) {
        failed = read_whole_file(log, &lines, &longest);
    } else if (strcmp(argv[1], "read_in_chunks") == 0) {
        failed = read_in_chunks(log, &lines, &longest);
    } else {
        fprintf(stderr, "line_index: unknown technique %s\n", argv[1]);
        return 2;
    }
    fclose(log);
    if (failed) {
        fprintf(stderr, "line_index: out of memory\n");
        return 1;
    }
    printf("%ld %ld\n", lines, longest);
    return 0;
}
