/*
 * lwipopts: how shoal configures lwIP 2.1.3. Included by every lwIP object and by netstack/
 * only. Owns the lwIP build options; must not carry any code.
 *
 * Shape of the deployment this is tuned for: one netif ("sh") whose link is the encrypted
 * peer-to-peer session; NO_SYS on the daemon's libev loop; a few hundred TCP connections, each
 * of which should fill a long fat path (50 ms RTT at several hundred Mbit/s) on its own.
 */
#ifndef SHOAL_LWIPOPTS_H
#define SHOAL_LWIPOPTS_H

/* --- system: no threads, no sockets; the netstack calls lwIP directly from the loop. --- */
#define NO_SYS                          1
#define LWIP_SOCKET                     0
#define LWIP_NETCONN                    0
#define LWIP_NETIF_API                  0
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_TIMERS                     1
#define LWIP_ALTCP                      0
/* SOF_REUSEADDR for virtual listeners (netstack/listen.c): a server restarted on the same port,
 * or an expose removed and added again, must listen at once while its old connections are
 * still open or in TIME_WAIT, as every kernel server does with SO_REUSEADDR. Two listeners on
 * one port are still refused (tcp_listen checks). Nothing else sets the option. */
#define SO_REUSE                        1
/* lwIP must not #define htons & co over libc's (netstack files include both). */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

/* --- memory. The heap is libc malloc: send buffers are big (see TCP_SND_BUF) and bounded by
 * each connection's window, so a fixed lwIP heap would either be huge or the first thing to
 * run out. Fixed-size objects come from static pools (O(1) free lists, no malloc per segment
 * or per received packet); the pools are BSS and only touched pages cost memory. --- */
#define MEM_LIBC_MALLOC                 1
#define MEM_ALIGNMENT                   8
#define MEM_SIZE                        (1024 * 1024) /* unused with libc malloc; sizes mem_size_t */
#define MEMP_MEM_MALLOC                 0
/* Pool elements are touched only once first used (patches/0005-*): the pools below are sized
 * for 16 MiB windows, and linking them all at init made an idle daemon ~28 MB resident. */
#define LWIP_MEMP_LAZY                  1
#define MEMP_OVERFLOW_CHECK             0
#define MEMP_SANITY_CHECK               0
#define MEMP_NUM_TCP_PCB                1024
/* Virtual listeners and UDP ports: `shoal run` programs announce every listening socket and
 * every UDP socket that talks to the overlay (a shim client may hold LP_CLIENT_REGS_MAX), plus
 * exposes and SOCKS UDP relays. Pool entries are a few dozen bytes of BSS each. */
#define MEMP_NUM_TCP_PCB_LISTEN         1024
#define MEMP_NUM_UDP_PCB                4352
#define MEMP_NUM_RAW_PCB                0
#define MEMP_NUM_PBUF                   256    /* PBUF_REF/ROM: only IP fragmentation uses them */
#define MEMP_NUM_TCP_SEG                65535  /* the most memp's u16 count holds */
#define MEMP_NUM_REASSDATA              32
#define MEMP_NUM_FRAG_PBUF              64
/* Received packets: one pool pbuf each (PBUF_POOL_BUFSIZE fits a full OVERLAY_MTU packet).
 * netstack_input falls back to a heap pbuf when the pool is empty, so connections whose
 * reader is slow (their data sits in lwIP until written out) cannot starve the others. */
/* At least one full TCP_WND of segments (lwIP's sanity check), so one fast receiver whose
 * reader keeps up never needs the heap fallback. */
#define PBUF_POOL_SIZE                  12800
#define PBUF_LINK_HLEN                  0
#define PBUF_LINK_ENCAPSULATION_HLEN    0

/* --- protocols --- */
#define LWIP_IPV4                       1
#define LWIP_IPV6                       0
#define LWIP_ARP                        0
#define LWIP_ETHERNET                   0
#define LWIP_ICMP                       1      /* ping replies, port unreachable */
#define LWIP_RAW                        0
#define LWIP_DHCP                       0
#define LWIP_AUTOIP                     0
#define LWIP_IGMP                       0      /* multicast is accepted and sent without it */
#define LWIP_DNS                        0
#define LWIP_UDP                        1
#define LWIP_TCP                        1
#define LWIP_HAVE_LOOPIF                0
#define LWIP_NETIF_LOOPBACK             0
#define LWIP_SINGLE_NETIF               1
#define LWIP_NETIF_STATUS_CALLBACK      0
#define LWIP_NETIF_LINK_CALLBACK        0
#define IP_FORWARD                      0
/* Datagrams larger than the overlay MTU are fragmented and reassembled (UDP games and
 * discovery protocols sometimes send them); reassembly memory is bounded. */
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
#define IP_REASS_MAX_PBUFS              128
#define IP_SOF_BROADCAST                1
#define IP_SOF_BROADCAST_RECV           1
#define LWIP_BROADCAST_PING             1

/* --- TCP. MSS = OVERLAY_MTU (1400) - 20 (IP) - 20 (TCP): no timestamps, so no options on
 * data segments. Windows: 16 MiB each way (scale 9 allows up to 32 MiB). On a lossy path the
 * window counts from the oldest hole, which waits about two round trips for its repair, while
 * the controller keeps twice the BDP in flight (tcp_cc.c): at 50 ms 8 MiB capped 0.1% loss at
 * ~590 Mbit/s and 1% at ~470, 16 MiB reached ~790 and ~650 (and a clean path 0.77x -> 0.92x
 * kernel BBR, in the same runs). Memory stays bounded per connection: the send buffer only
 * fills when the path is slower than the local writer, the receive side only when the local
 * reader is or while holes are repaired. --- */
#define TCP_MSS                         1360
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   9
#define TCP_WND                         (16 * 1024 * 1024)
#define TCP_SND_BUF                     (16 * 1024 * 1024)
/* Copying writes put one pbuf in each segment; 1.5 times lwIP's minimum leaves room for the
 * small segments that Nagle-less interactive traffic produces, and fits MEMP_NUM_TCP_SEG. */
#define TCP_SND_QUEUELEN                (3 * TCP_SND_BUF / TCP_MSS)
/* Only the socket layer uses the low-water marks; lwIP requires them to fit a u16. */
#define TCP_SNDLOWAT                    32768
#define TCP_QUEUE_OOSEQ                 1
#define LWIP_TCP_SACK_OUT               1
#define LWIP_TCP_MAX_SACK_NUM           4
/* Our SACK sender, loss recovery and congestion controller (netstack/tcp_ext.h, the hooks of
 * patches/0003-*): the state lives in lwIP's pcbs and segments. */
#define LWIP_TCPX                       1
/* lwIP's own timeouts plus tcp_pace.c's pacing tick. */
#define MEMP_NUM_SYS_TIMEOUT            (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 1)
#include "netstack/tcp_ext.h"
#define LWIP_TCP_TIMESTAMPS             0
#define TCP_LISTEN_BACKLOG              0
#define LWIP_TCP_KEEPALIVE              1
#define TCP_OVERSIZE                    TCP_MSS
#define TCP_MAXRTX                      12
#define TCP_SYNMAXRTX                   6
/* A window update goes out once the application freed a quarter of the window: fewer pure
 * ACKs than lwIP's default (which is tuned for tiny windows). */
#define TCP_WND_UPDATE_THRESHOLD        (TCP_WND / 4)
/* lwIP's fast timer (delayed ACKs, refused data retries) runs every TCP_TMR_INTERVAL and the
 * slow timer (RTO, persist, keepalive) every second tick. 100 ms instead of 250 ms: a lone
 * segment of interactive traffic is acknowledged within 100 ms, and RTO has a finer grain.
 * The timer only runs while TCP pcbs exist. */
#define TCP_TMR_INTERVAL                100

/* --- checksums. Every packet handed to netstack_input was authenticated by the session
 * AEAD, so verifying TCP/UDP checksums again only costs CPU (a full pass over every byte).
 * The IPv4 header checksum is 20 bytes and catches a sender building garbage headers, so it
 * is still checked. Checksums are always generated, so packets are valid on any real wire
 * (packet captures, a future TUN mode); TCP computes them while copying. --- */
#define CHECKSUM_GEN_IP                 1
#define CHECKSUM_GEN_UDP                1
#define CHECKSUM_GEN_TCP                1
#define CHECKSUM_GEN_ICMP               1
#define CHECKSUM_CHECK_IP               1
#define CHECKSUM_CHECK_UDP              0
#define CHECKSUM_CHECK_TCP              0
#define CHECKSUM_CHECK_ICMP             0
#define LWIP_CHECKSUM_ON_COPY           1
/* A word-at-a-time sum instead of lwIP's 16-bit loop (netstack/arch/sys_arch.c). */
#define LWIP_CHKSUM                     netstack_lwip_chksum

/* --- stats: netstack_get_stats reports lwIP's IP-level drops. --- */
#define LWIP_STATS                      1
#define LWIP_STATS_DISPLAY              0
#define LINK_STATS                      0
#define ETHARP_STATS                    0
#define IP_STATS                        1
#define IPFRAG_STATS                    0
#define ICMP_STATS                      0
#define UDP_STATS                       1
#define TCP_STATS                       1
#define MEM_STATS                       0
#define MEMP_STATS                      0
#define SYS_STATS                       0

/* --- randomness: ephemeral ports and initial sequence numbers come from libsodium
 * (RFC 6528: ISNs must not be guessable by someone off-path). --- */
#define LWIP_RAND()                     netstack_lwip_rand()
#define LWIP_HOOK_TCP_ISN(lip, lport, rip, rport) netstack_lwip_rand()

#endif
