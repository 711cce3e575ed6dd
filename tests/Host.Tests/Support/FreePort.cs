using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Lb.Host.Tests.Support;

public static class FreePort
{
    // The kernel may hand the same ephemeral port to two listeners opened one after the other; a port given
    // out once in this process is never given out again, so two listeners of one test never collide.
    private static readonly ConcurrentDictionary<int, bool> Given = new();

    /// <summary>A loopback port that was free a moment ago and was never returned before in this process.</summary>
    public static int Next()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var port = Probe();
            if (Given.TryAdd(port, true))
                return port;
        }
        throw new InvalidOperationException("no fresh loopback port after 100 attempts");
    }

    private static int Probe()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
