/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * replay DIR...: run a fuzz target (linked in, built without libFuzzer)
 * once on every file in each DIR, as libFuzzer would, so that the inputs
 * kept under tests/fuzz/regress run in `make check` under any compiler.
 * Exit 0 when every input ran (a crash ends the process), 1 on an unreadable
 * input or directory. An input that runs longer than REPLAY_TIMEOUT seconds
 * is a hang: SIGALRM ends the process, as libFuzzer's -timeout would.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_TIMEOUT	60	/* seconds; an input takes well under one */

static int run_file(const char *path)
{
	struct stat sb;
	uint8_t *buf;
	FILE *f;
	int ret = 1;

	if (stat(path, &sb)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISREG(sb.st_mode))
		return 0;
	f = fopen(path, "rb");
	buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!f || !buf || fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno ? errno : EIO));
		goto out;
	}
	fprintf(stderr, "replay: %s\n", path);
	alarm(REPLAY_TIMEOUT);
	LLVMFuzzerTestOneInput(buf, (size_t)sb.st_size);
	alarm(0);
	ret = 0;
out:
	if (f)
		fclose(f);
	free(buf);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned n = 0;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		struct dirent **ents;
		int cnt = scandir(argv[i], &ents, NULL, alphasort);

		if (cnt < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (int j = 0; j < cnt; j++) {
			char path[4096];

			if (ents[j]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
				ret |= run_file(path);
				n++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("replay: %u inputs\n", n);
	return ret;
}
