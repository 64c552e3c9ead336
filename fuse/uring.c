/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE over io_uring, served by the daemon itself over libfuse 3.14 (which
 * has no such transport). The kernel's ABI (Linux 6.14 and later,
 * Documentation/filesystems/fuse-io-uring.rst):
 *
 *   - the INIT reply carries FUSE_OVER_IO_URING (bit 41 of the flags) when
 *     the kernel offered it (its enable_uring parameter is on);
 *   - each entry is an IORING_OP_URING_CMD on /dev/fuse (128-byte SQEs):
 *     FUSE_IO_URING_CMD_REGISTER gives the kernel two buffers, a header
 *     (fuse_in_header, the opcode's own header, the entry's commit id and
 *     payload size) and a payload; its completion is a request;
 *     FUSE_IO_URING_CMD_COMMIT_AND_FETCH sends the reply (fuse_out_header
 *     in the header, the reply's payload) and waits for the next request;
 *   - one queue per possible CPU; a request goes to the queue of the CPU
 *     its caller runs on; the kernel serves over the ring once every queue
 *     has an entry, until then over /dev/fuse.
 *
 * Design:
 *  1. Each queue is served by a few threads (-o uring_threads, default
 *     PFS_URING_THREADS_DEFAULT), pinned to its CPU, each with its own
 *     ring and one entry: a request is served on the CPU that asked, by
 *     the thread that took it, straight into the store (no hand-off), and
 *     an entry is free only while its thread is, so a handler that waits
 *     (a device read, fsync) never holds up a request queued behind it:
 *     the kernel hands that one to another thread's entry. (With several
 *     entries per thread, the kernel would queue requests on the entries
 *     of a thread that is waiting; measured, a one-thread queue of 8
 *     entries served 16 concurrent direct reads at a quarter of the
 *     /dev/fuse rate.)
 *  2. A request reaches libfuse's own dispatch (fuse_session_process_buf)
 *     as /dev/fuse would have given it: the entry's payload buffer has room
 *     before it for the two headers, so the request is assembled in place
 *     and the payload (write data, names) is never copied. The reply comes
 *     back through wire.c's writev hook, which hands it here
 *     (pfs_uring_reply): the thread knows the entry it is serving.
 *  3. A handler replies before it returns, and the entry is committed when
 *     the dispatch returns (one not answered is committed with EIO rather
 *     than lost); except a handler that may wait on the kernel for another
 *     request of its own queue, served by this very thread: it hands the
 *     rest of its work, reply included, to the deferral thread
 *     (pfs_uring_defer), which gives the entry back to its queue's thread
 *     to commit (the queue's wake eventfd; only that thread submits to its
 *     ring). Such a wait is the kernel's page invalidation after an
 *     O_DIRECT write, which waits for page locks held by readers whose
 *     READ is queued behind the write.
 *  4. Sleeping is the default (the thread waits in io_uring_enter);
 *     -o poll=US spins on the completion queue for so long first.
 *  5. Nothing may announce the ring that cannot register: the threads,
 *     rings and buffers are made before the INIT reply goes out
 *     (pfs_uring_prepare), and the queues register after it was written
 *     (pfs_uring_go). A registration the kernel refuses makes it fall back
 *     to /dev/fuse by itself.
 *  6. Teardown: at unmount the kernel ends every entry with ENOTCONN; at
 *     the daemon's exit pfs_uring_stop wakes each thread by its eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "posfs.h"
#include "uring.h"
#include "wire.h"

/* ---- the kernel's ABI (include/uapi/linux/fuse.h, 7.42) ------------------ */

#define URING_CMD_REGISTER	1
#define URING_CMD_COMMIT_AND_FETCH 2
#define URING_HEADER_SZ		128	/* in_out and op_in, each */

struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;	/* the reply's key */
	uint32_t payload_sz;	/* bytes in the payload buffer */
	uint32_t padding;
	uint64_t reserved;
};

struct uring_req_header {
	char in_out[URING_HEADER_SZ];	/* fuse_in_header / fuse_out_header */
	char op_in[URING_HEADER_SZ];	/* the opcode's own header */
	struct uring_ent_in_out ent;
};

struct uring_cmd_req {			/* in the SQE's 80 command bytes */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct uring_cmd_req) <= 80, "uring_cmd_req fits an SQE128");

#define ENABLE_PARAM "/sys/module/fuse/parameters/enable_uring"

/* ---- the queues ------------------------------------------------------------ */

struct ring_queue;

struct ring_ent {
	struct ring_queue *q;
	struct uring_req_header *hdr;	/* page-aligned, first page of map */
	char *payload;			/* map + 2 pages: one page of room before */
	struct iovec iov[2];
	uint64_t commit_id;
	uint64_t unique;		/* of the request being served */
	unsigned cmd;			/* the command in flight */
	bool replied;
	bool deferred;			/* handed to the deferral thread (3) */
	struct ring_ent *next;		/* on the done list or the deferral queue */
	void (*fn)(void *);
	void *arg;
};

#define THREAD_ENTRIES	1	/* entries per thread at first */
#define THREAD_ENTRIES_MAX 32	/* with the entries added for deferrals (3) */

/* One thread of a queue, with its ring and entries. */
struct ring_queue {
	unsigned qid;			/* the kernel's queue: the CPU */
	unsigned idx;			/* among all the threads */
	pthread_t tid;
	bool started;
	int evfd;
	int state;			/* 0 starting, 1 ready, < 0 failed */
	struct io_uring ring;
	bool ring_made;
	unsigned alive;			/* entries the kernel still holds */
	int wakefd;			/* deferred entries done: commit them */
	pthread_mutex_t done_lock;
	struct ring_ent *done;		/* deferred entries to commit */
	_Atomic uint64_t ops[POSFS_TRANSPORT_OPS];
	unsigned nent;			/* entries made, at most THREAD_ENTRIES_MAX */
	unsigned waiting;		/* entries with a command queued or in flight */
	struct ring_ent *ent[THREAD_ENTRIES_MAX];
};

static struct {
	struct fuse_session *se;
	struct pfs_uring_opts o;
	bool offered;
	atomic_bool serving;		/* the INIT reply announced the ring */
	atomic_bool refused;		/* the kernel refused a registration */
	unsigned nq;			/* the kernel's queues: one per possible CPU */
	unsigned per;			/* threads per queue */
	unsigned nt;			/* threads: nq * per */
	size_t map_size, payload_size;
	struct ring_queue *queues;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int go;				/* 0 wait, 1 register, -1 leave */
	atomic_bool stopping;
	/* the deferral thread (3) */
	pthread_t defer_tid;
	bool defer_started;
	struct ring_ent *defer_head, **defer_tail;
	bool defer_stop;
	pthread_cond_t defer_cond;
} U = {
	.defer_cond = PTHREAD_COND_INITIALIZER,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static _Thread_local struct ring_ent *serving_ent;

/* ---- options and the kernel's parameter ----------------------------------- */

int pfs_uring_configure(struct fuse_session *se, const struct pfs_uring_opts *o)
{
	char v = 0;
	int fd;

	U.se = se;
	U.o = *o;
	if (o->mode != PFS_URING_ENABLE)
		return 0;
	fd = open(ENABLE_PARAM, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		pfs_log(LOG_ERR, "-o uring=enable: cannot open %s: %s%s", ENABLE_PARAM,
			strerror(err),
			err == ENOENT ? " (this kernel has no FUSE over io_uring: Linux 6.14 or later)" : "");
		return -err;
	}
	if (pread(fd, &v, 1, 0) == 1 && v == 'Y') {
		close(fd);
		return 0;
	}
	if (pwrite(fd, "1", 1, 0) != 1) {
		int err = errno;

		close(fd);
		pfs_log(LOG_ERR, "-o uring=enable: cannot write %s: %s", ENABLE_PARAM, strerror(err));
		return -err;
	}
	close(fd);
	pfs_log(LOG_NOTICE, "-o uring=enable: turned FUSE over io_uring on in the kernel (%s is now 1)",
		ENABLE_PARAM);
	return 0;
}

void pfs_uring_offered(bool offered)
{
	int prio = U.o.mode == PFS_URING_AUTO ? LOG_INFO : LOG_WARNING;

	U.offered = offered;
	if (U.o.mode == PFS_URING_OFF || offered)
		return;
	if (access(ENABLE_PARAM, F_OK))
		pfs_log(prio, "serving over /dev/fuse: this kernel has no FUSE over io_uring (Linux 6.14 or later)");
	else
		pfs_log(prio, "serving over /dev/fuse: FUSE over io_uring is off in the kernel "
			"(echo 1 > %s turns it on, or mount with -o uring=enable)", ENABLE_PARAM);
}

/* ---- submissions ------------------------------------------------------------ */

/* An SQE for ent's command cmd; the ring has room for every entry plus the
 * eventfd's poll, and each entry has at most one command in flight. */
static void queue_cmd(struct ring_queue *q, struct ring_ent *e, unsigned cmd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct uring_cmd_req *req;

	if (!sqe) {
		/* never: THREAD_ENTRIES_MAX + 2 SQEs, one per entry and two polls */
		pfs_log(LOG_CRIT, "FUSE over io_uring: queue %u has no free SQE", q->qid);
		abort();
	}
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;
	sqe->cmd_op = cmd;
	io_uring_sqe_set_data(sqe, e);
	req = (struct uring_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	if (cmd == URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	} else {
		req->commit_id = e->commit_id;
	}
	e->cmd = cmd;
	q->waiting++;
}

/* The reply, in the entry's buffers (the kernel reads them at the commit). */
static void ent_set_reply(struct ring_ent *e, int error, size_t payload)
{
	struct fuse_out_header *oh = (struct fuse_out_header *)e->hdr->in_out;

	oh->unique = e->unique;
	oh->error = error;
	oh->len = (uint32_t)(sizeof(*oh) + payload);
	e->hdr->ent.payload_sz = (uint32_t)payload;
	e->replied = true;
}

ssize_t pfs_uring_reply(const struct iovec *iov, int count)
{
	struct ring_ent *e = serving_ent;
	const struct fuse_out_header *oh;
	size_t len = 0;

	if (!e || count < 1 || iov[0].iov_len < sizeof(*oh))
		return -1;
	oh = iov[0].iov_base;
	if (oh->unique != e->unique || e->replied)
		return -1;
	for (int i = 1; i < count; i++) {
		if (len + iov[i].iov_len > U.payload_size) {
			pfs_log(LOG_ERR, "FUSE over io_uring: a reply of more than %zu bytes",
				U.payload_size);
			ent_set_reply(e, -EIO, 0);
			return (ssize_t)(sizeof(*oh) + len);
		}
		if (iov[i].iov_len)
			memmove(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	ent_set_reply(e, oh->error, oh->error ? 0 : len);
	return (ssize_t)(iov[0].iov_len + len);
}

/* A request in e's buffers: assembled in place before the payload (2) and
 * dispatched; then its commit is queued. */
static void ent_serve(struct ring_queue *q, struct ring_ent *e)
{
	const struct fuse_in_header *in = (const struct fuse_in_header *)e->hdr->in_out;
	uint32_t psz = e->hdr->ent.payload_sz;
	struct fuse_buf buf = { 0 };
	size_t oplen;
	char *req;

	e->commit_id = e->hdr->ent.commit_id;
	e->unique = in->unique;
	e->replied = false;
	if (in->len < sizeof(*in) + (size_t)psz || psz > U.payload_size ||
	    (oplen = in->len - sizeof(*in) - psz) > URING_HEADER_SZ) {
		pfs_log(LOG_ERR, "FUSE over io_uring: a request of opcode %u with bad sizes "
			"(len %u, payload %u)", in->opcode, in->len, psz);
		ent_set_reply(e, -EIO, 0);
		goto commit;
	}
	atomic_fetch_add_explicit(&q->ops[in->opcode < POSFS_TRANSPORT_OPS ? in->opcode : 0], 1,
				  memory_order_relaxed);
	req = e->payload - sizeof(*in) - oplen;
	memcpy(req, in, sizeof(*in));
	memcpy(req + sizeof(*in), e->hdr->op_in, oplen);
	buf.mem = req;
	buf.size = in->len;
	pfs_wire_note(req, in->len);
	serving_ent = e;
	e->deferred = false;
	if (!pfs_wire_intercept(U.se, req, in->len))
		fuse_session_process_buf(U.se, &buf);
	serving_ent = NULL;
	if (e->deferred)
		return;		/* committed when the deferral thread is done */
	if (!e->replied) {
		/* (3) not answered in its handler: never happens in posfs */
		pfs_log(LOG_ERR, "FUSE over io_uring: opcode %u left without a reply", in->opcode);
		ent_set_reply(e, -EIO, 0);
	}
commit:
	queue_cmd(q, e, URING_CMD_COMMIT_AND_FETCH);
}

/* Re-arm the poll on the wake eventfd. */
static void queue_poll_wake(struct ring_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		pfs_log(LOG_CRIT, "FUSE over io_uring: queue %u has no free SQE", q->qid);
		abort();
	}
	io_uring_prep_poll_add(sqe, q->wakefd, POLLIN);
	io_uring_sqe_set_data(sqe, &q->wakefd);
}

/* The deferral thread is done with some entries: commit them (3). */
static void queue_done(struct ring_queue *q)
{
	struct ring_ent *e, *next;
	uint64_t n;

	if (read(q->wakefd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pfs_log(LOG_ERR, "FUSE over io_uring: queue %u: %s", q->qid, strerror(errno));
	pthread_mutex_lock(&q->done_lock);
	e = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->done_lock);
	for (; e; e = next) {
		next = e->next;
		queue_cmd(q, e, URING_CMD_COMMIT_AND_FETCH);
	}
	queue_poll_wake(q);
}

/* One completion. false: the queue is done (its eventfd, or no entry left). */
static bool queue_complete(struct ring_queue *q, const struct io_uring_cqe *cqe)
{
	struct ring_ent *e = io_uring_cqe_get_data(cqe);

	if (!e)			/* the eventfd: pfs_uring_stop */
		return false;
	if (e == (struct ring_ent *)&q->wakefd) {
		queue_done(q);
		return true;
	}
	q->waiting--;
	if (cqe->res == 0) {
		ent_serve(q, e);
		return true;
	}
	if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
		queue_cmd(q, e, e->cmd);
		return true;
	}
	if (cqe->res != -ENOTCONN && cqe->res != -ECONNABORTED && cqe->res != -ECANCELED &&
	    !atomic_load(&U.stopping))
		pfs_log(LOG_ERR, "FUSE over io_uring: queue %u: %s failed: %s%s", q->qid,
			e->cmd == URING_CMD_REGISTER ? "registering an entry" : "a commit",
			strerror(-cqe->res),
			e->cmd == URING_CMD_REGISTER ? "; serving over /dev/fuse" : "");
	if (e->cmd == URING_CMD_REGISTER)
		atomic_store(&U.refused, true);
	return --q->alive > 0;
}

/* Wait for a completion (4): spin first with -o poll. */
static int queue_wait(struct ring_queue *q)
{
	struct timespec now, end;
	int ret;

	if (!U.o.poll_us)
		return io_uring_submit_and_wait(&q->ring, 1);
	ret = io_uring_submit(&q->ring);
	if (ret < 0)
		return ret;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += (long)U.o.poll_us * 1000;
	end.tv_sec += end.tv_nsec / 1000000000;
	end.tv_nsec %= 1000000000;
	do {
		if (io_uring_cq_ready(&q->ring))
			return 0;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	return io_uring_submit_and_wait(&q->ring, 1);
}

/* A new entry of q with its buffers (not registered yet); NULL when q has
 * THREAD_ENTRIES_MAX or memory is short. */
static struct ring_ent *ent_new(struct ring_queue *q)
{
	long page = sysconf(_SC_PAGESIZE);
	struct ring_ent *e;
	char *map;

	if (q->nent >= THREAD_ENTRIES_MAX)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	map = mmap(NULL, U.map_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED) {
		free(e);
		return NULL;
	}
	e->q = q;
	e->hdr = (struct uring_req_header *)map;
	e->payload = map + 2 * page;
	e->iov[0].iov_base = e->hdr;
	e->iov[0].iov_len = (size_t)page;
	e->iov[1].iov_base = e->payload;
	e->iov[1].iov_len = U.payload_size;
	q->ent[q->nent++] = e;
	return e;
}

/* The ring and the entries' buffers; 0 or a negative errno. */
static int queue_setup(struct ring_queue *q)
{
	struct io_uring_params params = { 0 };
	int fd = fuse_session_fd(U.se), ret;

	q->evfd = eventfd(0, EFD_CLOEXEC);
	if (q->evfd < 0)
		return -errno;
	q->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->wakefd < 0)
		return -errno;
	params.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	params.cq_entries = 2 * (THREAD_ENTRIES_MAX + 2);
	ret = io_uring_queue_init_params(THREAD_ENTRIES_MAX + 2, &q->ring, &params);
	if (ret)
		return ret;
	q->ring_made = true;
	ret = io_uring_register_files(&q->ring, &fd, 1);
	if (ret)
		return ret;
	for (unsigned i = 0; i < THREAD_ENTRIES; i++) {
		if (!ent_new(q))
			return -ENOMEM;
	}
	return 0;
}

static void *queue_main(void *arg)
{
	struct ring_queue *q = arg;
	char name[16];
	cpu_set_t cpus;
	int ret, go;

	snprintf(name, sizeof(name), "posfs-ur%u.%u", q->qid, q->idx / U.nq);
	pthread_setname_np(pthread_self(), name);
	CPU_ZERO(&cpus);
	CPU_SET(q->qid, &cpus);
	/* (1) a CPU outside this process's set: the thread runs unpinned */
	(void)sched_setaffinity(0, sizeof(cpus), &cpus);
	ret = queue_setup(q);
	pthread_mutex_lock(&U.lock);
	q->state = ret ? ret : 1;
	pthread_cond_broadcast(&U.cond);
	while (!U.go)
		pthread_cond_wait(&U.cond, &U.lock);
	go = U.go;
	pthread_mutex_unlock(&U.lock);
	if (ret || go < 0)
		return NULL;

	for (unsigned i = 0; i < q->nent; i++)
		queue_cmd(q, q->ent[i], URING_CMD_REGISTER);
	q->alive = q->nent;
	{
		struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

		io_uring_prep_poll_add(sqe, q->evfd, POLLIN);
		io_uring_sqe_set_data(sqe, NULL);
	}
	queue_poll_wake(q);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		bool more = true;

		ret = queue_wait(q);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			pfs_log(LOG_ERR, "FUSE over io_uring: queue %u: %s", q->qid, strerror(-ret));
			break;
		}
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			seen++;
			if (!queue_complete(q, cqe)) {
				more = false;
				break;
			}
		}
		io_uring_cq_advance(&q->ring, seen);
		if (!more || atomic_load_explicit(&U.stopping, memory_order_relaxed))
			break;
	}
	return NULL;
}

/* ---- the deferral thread (3) --------------------------------------------- */

static void *defer_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "posfs-udefer");
	pthread_mutex_lock(&U.lock);
	for (;;) {
		struct ring_ent *e = U.defer_head;
		struct ring_queue *q;

		if (!e) {
			if (U.defer_stop)
				break;
			pthread_cond_wait(&U.defer_cond, &U.lock);
			continue;
		}
		U.defer_head = e->next;
		if (!U.defer_head)
			U.defer_tail = &U.defer_head;
		pthread_mutex_unlock(&U.lock);

		serving_ent = e;
		e->fn(e->arg);
		serving_ent = NULL;
		if (!e->replied) {
			pfs_log(LOG_ERR, "FUSE over io_uring: a deferred request left without a reply");
			ent_set_reply(e, -EIO, 0);
		}
		q = e->q;
		pthread_mutex_lock(&q->done_lock);
		e->next = q->done;
		q->done = e;
		pthread_mutex_unlock(&q->done_lock);
		{
			uint64_t one = 1;

			if (write(q->wakefd, &one, sizeof(one)) < 0)
				pfs_log(LOG_ERR, "FUSE over io_uring: cannot wake queue %u: %s",
					q->qid, strerror(errno));
		}
		pthread_mutex_lock(&U.lock);
	}
	pthread_mutex_unlock(&U.lock);
	return NULL;
}

/*
 * The deferred entry stays with its request until the deferral thread is
 * done, so unless another entry of its thread waits for a request, the
 * thread registers a new one first (3): a request that the deferred work
 * waits for (a READ of a page the invalidation must lock) finds an entry
 * free on that queue, however many are deferred. A thread has as many
 * entries as it once had deferred at the same time, plus one.
 */
bool pfs_uring_defer(void (*fn)(void *arg), void *arg)
{
	struct ring_ent *e = serving_ent, *spare;
	bool ok = false;

	if (!e || e->deferred || !pthread_equal(e->q->tid, pthread_self()))
		return false;
	if (!e->q->waiting) {
		/* no other entry of this thread waits for a request: one more */
		spare = ent_new(e->q);
		if (!spare)
			return false;
		e->q->alive++;
		queue_cmd(e->q, spare, URING_CMD_REGISTER);
	}
	pthread_mutex_lock(&U.lock);
	if (U.defer_started && !U.defer_stop) {
		e->fn = fn;
		e->arg = arg;
		e->next = NULL;
		e->deferred = true;
		*U.defer_tail = e;
		U.defer_tail = &e->next;
		pthread_cond_signal(&U.defer_cond);
		ok = true;
	}
	pthread_mutex_unlock(&U.lock);
	return ok;
}

/* ---- start and stop ------------------------------------------------------- */

static void queues_free(void)
{
	for (unsigned i = 0; i < U.nt; i++) {
		struct ring_queue *q = &U.queues[i];

		if (q->started)
			pthread_join(q->tid, NULL);
		if (q->ring_made)
			io_uring_queue_exit(&q->ring);
		if (q->evfd >= 0)
			close(q->evfd);
		if (q->wakefd >= 0)
			close(q->wakefd);
		pthread_mutex_destroy(&q->done_lock);
		for (unsigned j = 0; j < q->nent; j++) {
			munmap(q->ent[j]->hdr, U.map_size);
			free(q->ent[j]);
		}
	}
	free(U.queues);
	U.queues = NULL;
	U.nq = U.nt = 0;
}

bool pfs_uring_prepare(uint32_t max_payload)
{
	long page = sysconf(_SC_PAGESIZE);
	sigset_t all, old;
	unsigned nq;
	int failed = 0;

	if (U.o.mode == PFS_URING_OFF || !U.offered || !U.se)
		return false;
	nq = (unsigned)get_nprocs_conf();
	U.per = U.o.threads ? U.o.threads : PFS_URING_THREADS_DEFAULT;
	U.queues = calloc((size_t)nq * U.per, sizeof(*U.queues));
	if (!U.queues) {
		pfs_log(LOG_ERR, "FUSE over io_uring: out of memory; serving over /dev/fuse");
		return false;
	}
	U.nq = nq;
	U.nt = nq * U.per;
	U.payload_size = ((size_t)max_payload + (size_t)page - 1) / (size_t)page * (size_t)page;
	U.map_size = 2 * (size_t)page + U.payload_size;
	U.go = 0;
	/* signals go to the main thread, never to a ring thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < U.nt; i++) {
		struct ring_queue *q = &U.queues[i];

		q->qid = i % nq;
		q->idx = i;
		q->evfd = -1;
		q->wakefd = -1;
		pthread_mutex_init(&q->done_lock, NULL);
		if (pthread_create(&q->tid, NULL, queue_main, q)) {
			q->state = -EAGAIN;
			continue;
		}
		q->started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&U.lock);
	for (unsigned i = 0; i < U.nt; i++) {
		while (!U.queues[i].state)
			pthread_cond_wait(&U.cond, &U.lock);
		if (U.queues[i].state < 0 && !failed) {
			failed = U.queues[i].state;
			pfs_log(LOG_ERR, "FUSE over io_uring: cannot set up queue %u: %s; "
				"serving over /dev/fuse", U.queues[i].qid, strerror(-failed));
		}
	}
	pthread_mutex_unlock(&U.lock);
	if (failed) {
		pfs_uring_go(false);
		return false;
	}
	return true;
}

void pfs_uring_go(bool written)
{
	pthread_mutex_lock(&U.lock);
	U.go = written ? 1 : -1;
	pthread_cond_broadcast(&U.cond);
	pthread_mutex_unlock(&U.lock);
	if (!written) {
		queues_free();
		return;
	}
	atomic_store(&U.serving, true);
	U.defer_tail = &U.defer_head;
	if (!pthread_create(&U.defer_tid, NULL, defer_main, NULL)) {
		pthread_mutex_lock(&U.lock);
		U.defer_started = true;
		pthread_mutex_unlock(&U.lock);
	} else {
		pfs_log(LOG_WARNING, "FUSE over io_uring: no deferral thread: O_DIRECT writes "
			"invalidate the page cache on the ring's own threads");
	}
	pfs_log(LOG_INFO, "serving over FUSE io_uring: %u queues of %u entries%s", U.nq,
		U.per * THREAD_ENTRIES, U.o.poll_us ? ", polled" : "");
}

void pfs_uring_stop(void)
{
	uint64_t one = 1;

	if (!U.queues)
		return;
	/* the deferral thread's work first: it may wait for the ring's threads */
	pthread_mutex_lock(&U.lock);
	U.defer_stop = true;
	pthread_cond_signal(&U.defer_cond);
	pthread_mutex_unlock(&U.lock);
	if (U.defer_started)
		pthread_join(U.defer_tid, NULL);
	atomic_store(&U.stopping, true);
	for (unsigned i = 0; i < U.nt; i++) {
		if (U.queues[i].evfd >= 0 && write(U.queues[i].evfd, &one, sizeof(one)) < 0)
			pfs_log(LOG_ERR, "FUSE over io_uring: cannot wake queue %u: %s", i,
				strerror(errno));
	}
	queues_free();
}

void pfs_uring_status(struct posfs_transport *t)
{
	bool ring = atomic_load(&U.serving) && !atomic_load(&U.refused);

	t->transport = ring ? POSFS_TRANSPORT_URING : POSFS_TRANSPORT_DEV;
	t->queues = ring ? U.nq : 0;
	t->depth = ring ? U.per * THREAD_ENTRIES : 0;
	t->poll_us = ring ? U.o.poll_us : 0;
	if (!atomic_load(&U.serving))
		return;
	for (unsigned i = 0; i < U.nt; i++) {
		for (unsigned op = 0; op < POSFS_TRANSPORT_OPS; op++)
			t->uring_ops[op] += atomic_load_explicit(&U.queues[i].ops[op],
								 memory_order_relaxed);
	}
}
