/* The runtime baseline's workload (src/requirements.rs): a static x86_64 program, no libc,
 * that only calls exit(0). Assembled and linked by build.rs:
 * `$CC -nostdlib -static -s -Wl,--build-id=none -Wl,-n` (400 bytes: -n drops the page
 * padding; the one section and a GNU_STACK header, so the stack is not executable). */
	.globl _start
	.text
_start:
	mov $60, %eax		/* exit */
	xor %edi, %edi		/* status 0 */
	syscall
	.section .note.GNU-stack,"",@progbits
