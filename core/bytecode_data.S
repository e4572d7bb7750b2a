/* bytecode_data.S: the precompiled library (scripts/luabc.c; bytecode.h) linked into orket
 * as read-only data. BYTECODE_BIN names the bundle the build made. */
        .section .rodata
        .balign 16
        .globl orket_bytecode
        .type orket_bytecode, @object
orket_bytecode:
        .incbin BYTECODE_BIN
        .globl orket_bytecode_end
orket_bytecode_end:
        .section .note.GNU-stack,"",@progbits
