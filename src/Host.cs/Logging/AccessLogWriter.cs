using System.Text;
using System.Threading.Channels;
using Lb.Rules;

namespace Lb.Host.Logging;

/// <summary>
/// The access log (`[log] access`): the forwarding path hands each finished request to a bounded channel and
/// never waits; one background task formats the lines (<see cref="AccessLog.Format"/>) and writes them to
/// stdout or a file, flushing whenever the channel runs empty. When the channel is full (the disk cannot keep
/// up) lines are dropped and counted rather than slowing clients down. Write errors go to the error log.
/// </summary>
public sealed class AccessLogWriter : BackgroundService
{
    private const int Capacity = 65_536;

    private readonly Channel<AccessLogEntry>? _channel;
    private readonly AccessLogTarget _target;
    private readonly ILogger<AccessLogWriter> _logger;
    private long _dropped;
    private long _written;

    public AccessLogWriter(LbConfig config, ILogger<AccessLogWriter> logger)
    {
        _target = config.Log.Access;
        _logger = logger;
        if (!_target.IsOff)
            _channel = Channel.CreateBounded<AccessLogEntry>(new BoundedChannelOptions(Capacity)
            {
                FullMode = BoundedChannelFullMode.DropWrite,
                SingleReader = true,
            });
    }

    /// <summary>False with `access = "off"`: callers skip building entries at all.</summary>
    public bool Enabled => _channel is not null;

    public long Dropped => Interlocked.Read(ref _dropped);
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Queues one line; never blocks.</summary>
    public void Write(AccessLogEntry entry)
    {
        if (_channel is not null && !_channel.Writer.TryWrite(entry))
            Interlocked.Increment(ref _dropped);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_channel is null)
            return;
        await using var output = Open();
        var reader = _channel.Reader;
        try
        {
            // Not cancelled by stoppingToken: StopAsync completes the channel, and the lines queued so far are
            // written before the task ends.
            while (await reader.WaitToReadAsync(CancellationToken.None))
            {
                while (reader.TryRead(out var entry))
                {
                    try
                    {
                        await output.WriteLineAsync(AccessLog.Format(entry));
                        Interlocked.Increment(ref _written);
                    }
                    catch (IOException e)
                    {
                        _logger.LogError(e, "access log: cannot write to {Target}", _target);
                    }
                }
                await output.FlushAsync(CancellationToken.None);
            }
        }
        catch (IOException e)
        {
            _logger.LogError(e, "access log: cannot flush {Target}", _target);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel?.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    private StreamWriter Open()
    {
        if (_target is AccessLogTarget.File file)
        {
            var stream = new FileStream(file.path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 64 * 1024);
            return new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = false, NewLine = "\n" };
        }
        return new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false, NewLine = "\n" };
    }

    /// <summary>Opens the log file once at start so a bad path fails `lb run` at once, not at the first request.</summary>
    public static void CheckWritable(LbConfig config)
    {
        if (config.Log.Access is AccessLogTarget.File file)
            using (new FileStream(file.path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
            {
            }
    }
}
