using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Lb.Host.Tests.Support;

/// <summary>What a <see cref="FaultyBackend"/> does with the next request (health checks included).</summary>
public enum Fault
{
    /// <summary>Answers 200 with its name as the body.</summary>
    None,
    /// <summary>Reads the request and never answers: a server stuck in a deadlock or a full GC.</summary>
    Hang,
    /// <summary>Accepts the connection and resets it (RST) before reading anything.</summary>
    ResetOnAccept,
    /// <summary>Reads the request and resets the connection without a byte of response.</summary>
    ResetAfterRequest,
    /// <summary>Reads the request, sends half a status line and headers, then resets.</summary>
    ResetInHeaders,
}

/// <summary>
/// A backend on loopback speaking just enough HTTP/1.1 (keep-alive, requests without body) over raw sockets,
/// so a test decides exactly what happens on the wire: hang, reset (SO_LINGER 0, so the peer gets RST), fail
/// its health checks, or die with its connections and come back on the same port. It counts every fault it
/// acted out, so a test can show its faults were met.
/// </summary>
public sealed class FaultyBackend : IAsyncDisposable
{
    private readonly ConcurrentDictionary<Socket, bool> _open = new();
    private TcpListener? _listener;
    private CancellationTokenSource _life = new();
    private long _answered, _hung, _resets, _kills;
    private volatile Fault _fault;

    private FaultyBackend(string name) => Name = name;

    public string Name { get; }
    public int Port { get; private set; }
    public string Address => $"127.0.0.1:{Port}";

    /// <summary>What the next request meets; read once per request.</summary>
    public Fault Fault { get => _fault; set => _fault = value; }

    /// <summary>Health checks (User-Agent `lb-healthcheck/...`) get 503 while set; traffic is unaffected.</summary>
    public volatile bool FailChecks;

    public long Answered => Interlocked.Read(ref _answered);
    public long Hung => Interlocked.Read(ref _hung);
    public long Resets => Interlocked.Read(ref _resets);
    public long Kills => Interlocked.Read(ref _kills);
    public bool IsRunning => _listener is not null;

    public static FaultyBackend Start(string name)
    {
        var backend = new FaultyBackend(name);
        backend.Listen(0);
        return backend;
    }

    private void Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start(512);
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        _life = new CancellationTokenSource();
        _listener = listener;
        _ = AcceptAsync(listener, _life.Token);
    }

    /// <summary>Dies: stops listening and resets every open connection, as a killed process's kernel does.</summary>
    public void Kill()
    {
        if (Interlocked.Exchange(ref _listener, null) is not { } listener)
            return;
        Interlocked.Increment(ref _kills);
        listener.Stop();
        _life.Cancel();
        foreach (var socket in _open.Keys)
            Reset(socket);
    }

    /// <summary>Comes back on the same port.</summary>
    public void Restart()
    {
        if (_listener is null)
            Listen(Port);
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(stop);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ServeAsync(socket, stop);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken stop)
    {
        _open[socket] = true;
        try
        {
            if (Fault == Fault.ResetOnAccept)
            {
                Interlocked.Increment(ref _resets);
                Reset(socket);
                return;
            }
            var buffer = new byte[16 * 1024];
            var filled = 0;
            while (!stop.IsCancellationRequested)
            {
                var end = await ReadHeadAsync(socket, buffer, filled, stop);
                if (end.Head is null)
                    return;
                // Requests carry no body here (GETs and checks): what follows the head is the next request.
                filled = end.Filled - end.Used;
                Array.Copy(buffer, end.Used, buffer, 0, filled);
                if (!await AnswerAsync(socket, end.Head, stop))
                    return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            _open.TryRemove(socket, out _);
            socket.Dispose();
        }
    }

    /// <summary>Reads until a blank line ends the request head; a null head when the peer closed first.</summary>
    private static async Task<(string? Head, int Used, int Filled)> ReadHeadAsync(Socket socket, byte[] buffer, int filled, CancellationToken stop)
    {
        while (true)
        {
            var end = IndexOfBlankLine(buffer, filled);
            if (end >= 0)
                return (Encoding.ASCII.GetString(buffer, 0, end), end + 4, filled);
            if (filled == buffer.Length)
                return (null, 0, 0);
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, stop);
            if (read == 0)
                return (null, 0, 0);
            filled += read;
        }
    }

    private static int IndexOfBlankLine(byte[] buffer, int length) =>
        buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);

    /// <summary>Acts out the current fault for one request; false when the connection is finished.</summary>
    private async Task<bool> AnswerAsync(Socket socket, string head, CancellationToken stop)
    {
        switch (Fault)
        {
            case Fault.Hang:
                Interlocked.Increment(ref _hung);
                // Until the peer gives up and closes (or this backend dies): never a byte back.
                var sink = new byte[1024];
                while (await socket.ReceiveAsync(sink, SocketFlags.None, stop) > 0)
                {
                }
                return false;
            case Fault.ResetOnAccept or Fault.ResetAfterRequest:
                Interlocked.Increment(ref _resets);
                Reset(socket);
                return false;
            case Fault.ResetInHeaders:
                Interlocked.Increment(ref _resets);
                await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Ty"u8.ToArray(), SocketFlags.None, stop);
                Reset(socket);
                return false;
        }
        var isCheck = head.Contains("\r\nUser-Agent: lb-healthcheck/", StringComparison.OrdinalIgnoreCase);
        var status = isCheck && FailChecks ? "503 Service Unavailable" : "200 OK";
        var body = Encoding.ASCII.GetBytes(Name);
        var response = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nCache-Control: no-store\r\n\r\n{Name}");
        await socket.SendAsync(response, SocketFlags.None, stop);
        Interlocked.Increment(ref _answered);
        return true;
    }

    /// <summary>Closes with SO_LINGER 0: the kernel sends RST instead of FIN.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        return ValueTask.CompletedTask;
    }
}
