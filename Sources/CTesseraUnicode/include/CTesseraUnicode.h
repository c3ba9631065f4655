// Unicode normalization through ICU (Debian's libicu), behind one unversioned entry point: ICU's own names
// carry its version (unorm2_normalize_72), which Swift cannot reach through the header's macros.
#ifndef CTESSERA_UNICODE_H
#define CTESSERA_UNICODE_H

#include <stdint.h>

enum {
    TESSERA_NFC = 0,
    TESSERA_NFD = 1,
    TESSERA_NFKC = 2,
    TESSERA_NFKD = 3,
};

/// Normalizes `length` UTF-16 units of `source` into `destination` (room for `capacity` units) in the form
/// `form` (TESSERA_NFC ...). Returns the length of the result, which may exceed `capacity` (then nothing
/// usable was written: call again with that much room), or -1 when ICU reports an error.
int32_t tessera_normalize_utf16(int form, const uint16_t *source, int32_t length, uint16_t *destination, int32_t capacity);

#endif
