using System.Net;
using System.Net.Sockets;

namespace Lb.Host.Tests.Support;

public static class FreePort
{
    /// <summary>A loopback port that was free a moment ago: the kernel picks it for a listener on port 0.</summary>
    public static int Next()
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
