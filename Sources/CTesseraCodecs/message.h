// Copying a library's message into the caller's buffer, always NUL-terminated.
#ifndef CTESSERACODECS_MESSAGE_H
#define CTESSERACODECS_MESSAGE_H
#include <stddef.h>
#include <string.h>

static inline void ctc_message(char *buffer, size_t capacity, const char *text) {
    if (buffer == NULL || capacity == 0) return;
    size_t length = strlen(text);
    if (length >= capacity) length = capacity - 1;
    memcpy(buffer, text, length);
    buffer[length] = '\0';
}
#endif
