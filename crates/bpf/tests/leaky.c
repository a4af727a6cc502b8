/* A native program that leaks, for the creation-site tests: "fds" opens /dev/null in
 * leak_log_file() and never closes it; "threads" starts a thread in start_worker() that
 * never ends; "sockets" creates a socket in open_upstream() and keeps it. Each also creates
 * (and closes) a few elsewhere, so the leaking site has to win on counts. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) void leak_log_file(void)
{
	if (open("/dev/null", O_RDONLY) < 0)
		perror("open");
}

__attribute__((noinline)) void read_config(void)
{
	int fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		close(fd);
}

static void *idle(void *arg)
{
	(void)arg;
	pause();
	return 0;
}

__attribute__((noinline)) void start_worker(void)
{
	pthread_t t;
	if (pthread_create(&t, 0, idle, 0) != 0)
		perror("pthread_create");
}

__attribute__((noinline)) void open_upstream(void)
{
	if (socket(AF_INET, SOCK_STREAM, 0) < 0)
		perror("socket");
}

__attribute__((noinline)) void handle_request(const char *mode, int i)
{
	if (strcmp(mode, "threads") == 0)
		start_worker();
	else if (strcmp(mode, "sockets") == 0)
		open_upstream();
	else
		leak_log_file();
	if (i % 10 == 0)
		read_config();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "fds";
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 100000; i++) {
		handle_request(mode, i);
		usleep(20000);
	}
	return 0;
}
