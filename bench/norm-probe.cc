// norm-probe.cc - NORM (RFC 5740, NRL's libnorm) sending one file to a group, for
// bench/multicast.sh: the measurement behind doc/multicast.md's choice of transport.
// Built by the bench script itself (g++ $(pkg-config --cflags --libs norm)); not part of
// preboot's build. normApi.h is C++-only, hence this file's language.
//   norm-probe send FILE GROUP PORT RATE_MBIT RECEIVERS PARITY
//   norm-probe recv DIR GROUP PORT NODE_ID OUTFILE
// The sender adds receivers 2..RECEIVERS+1 as acking nodes and exits once a watermark
// after the file is acknowledged by all of them (or 120 s pass).
#include <normApi.h>

#include <cstdio>
#include <unistd.h>
#include <cstdlib>
#include <cstring>
#include <ctime>

static double now()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: norm-probe send FILE GROUP PORT MBIT N PARITY | recv DIR GROUP "
                        "PORT NODE OUT\n");
        return 2;
    }
    bool send = strcmp(argv[1], "send") == 0;
    NormInstanceHandle inst = NormCreateInstance();
    NormNodeId node = send ? 1 : (NormNodeId)atoi(argv[5]);
    NormSessionHandle s = NormCreateSession(inst, argv[3], (UINT16)atoi(argv[4]), node);
    double t0 = now();
    if (send) {
        int n = atoi(argv[6]), parity = argc > 7 ? atoi(argv[7]) : 0;
        NormSetTxRate(s, atof(argv[5]) * 1e6);
        NormSetTxSocketBuffer(s, 4 << 20);
        NormSetGrttEstimate(s, 0.001);
        for (int i = 0; i < n; i++)
            NormAddAckingNode(s, (NormNodeId)(2 + i));
        if (!NormStartSender(s, (NormSessionId)rand(), 64u << 20, 1400, 64, (UINT16)parity)) {
            fprintf(stderr, "norm-probe: NormStartSender failed\n");
            return 1;
        }
        NormObjectHandle obj = NormFileEnqueue(s, argv[2]);
        if (obj == NORM_OBJECT_INVALID) {
            fprintf(stderr, "norm-probe: cannot enqueue %s\n", argv[2]);
            return 1;
        }
        NormSetWatermark(s, obj);
        NormEvent ev;
        while (now() - t0 < 120 && NormGetNextEvent(inst, &ev)) {
            if (ev.type == NORM_TX_WATERMARK_COMPLETED) {
                NormAckingStatus st = NormGetAckingStatus(s);
                printf("norm-probe: watermark %s after %.2f s\n",
                       st == NORM_ACK_SUCCESS ? "acknowledged by all" : "incomplete", now() - t0);
                break;
            }
        }
    } else {
        NormSetCacheDirectory(inst, argv[2]);
        NormSetRxSocketBuffer(s, 16 << 20);
        NormSetDefaultSyncPolicy(s, NORM_SYNC_ALL);
        NormStartReceiver(s, 64u << 20);
        NormEvent ev;
        while (now() - t0 < 120 && NormGetNextEvent(inst, &ev)) {
            if (ev.type == NORM_RX_OBJECT_COMPLETED) {
                char name[4096];
                if (!NormFileGetName(ev.object, name, sizeof(name)) ||
                    std::rename(name, argv[6]) != 0)
                    fprintf(stderr, "norm-probe: cannot move the file to %s\n", argv[6]);
                timespec rt;
                clock_gettime(CLOCK_REALTIME, &rt);
                // the bench takes the time from here, not from the exit 2 s later
                printf("norm-probe: received after %.2f s; done-at %ld.%09ld\n", now() - t0,
                       (long)rt.tv_sec, rt.tv_nsec);
                fflush(stdout);
                // Stay a little so the sender's watermark is acknowledged (NORM's own
                // thread answers it).
                sleep(2);
                break;
            }
        }
    }
    NormDestroyInstance(inst);
    return 0;
}
