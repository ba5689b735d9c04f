/**
 * A short-lived child process that sends every socket it is sent straight
 * back (workers > 1 with listen "systemd"; http-threads.ts). The way back
 * through the IPC channel (SCM_RIGHTS) gives the sender a new descriptor for
 * the same listening socket: Node has no dup(), and each HTTP thread needs a
 * descriptor of its own, since closing one fd number that several event loops
 * watch breaks the others (libuv aborts on a watched fd closed under it).
 */
process.on('message', (message: unknown, handle: unknown) => {
  process.send!(message, handle as never);
});
process.on('disconnect', () => process.exit(0));
