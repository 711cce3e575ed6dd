using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Lb.Host.Tests.Support;

public static class FreePort
{
    // Ports come from below the kernel's ephemeral range (32768-60999 by default): a port the kernel handed out
    // ("bind to 0") is handed out again as the source port of some test's outgoing connection, and an lb process
    // started a moment later then failed to bind it ("address already in use", seen in a full CI run).
    private const int First = 20000, Count = 12000;
    private static int _cursor = Random.Shared.Next(Count);
    // A port given out once in this process is never given out again, so two listeners of one test never collide.
    private static readonly ConcurrentDictionary<int, bool> Given = new();

    /// <summary>A loopback port outside the ephemeral range, free a moment ago, never returned before in this process.</summary>
    public static int Next()
    {
        for (var attempt = 0; attempt < Count; attempt++)
        {
            var port = First + (int)((uint)Interlocked.Increment(ref _cursor) % Count);
            if (Given.TryAdd(port, true) && CanBind(port))
                return port;
        }
        throw new InvalidOperationException($"no fresh port in {First}-{First + Count - 1}");
    }

    private static bool CanBind(int port)
    {
        var listener = new TcpListener(IPAddress.Any, port);
        try
        {
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        finally
        {
            listener.Stop();
        }
    }
}
