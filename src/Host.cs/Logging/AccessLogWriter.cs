using System.Buffers;
using System.Threading.Channels;
using Lb.Rules;

namespace Lb.Host.Logging;

/// <summary>
/// The access log (`[log] access`): the forwarding path hands each finished request to a bounded channel and
/// never waits; one background task writes the lines (<see cref="AccessLog.Write"/>) into a buffer and that to
/// stdout or a file, whenever the channel runs empty or 64 KiB have gathered. When the channel is full (the disk cannot keep
/// up) lines are dropped and counted rather than slowing clients down. Write errors go to the error log.
/// </summary>
public sealed class AccessLogWriter : BackgroundService
{
    private const int Capacity = 65_536;
    private const int BatchBytes = 64 * 1024;

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
        // Lines are written into this buffer and go out in batches: at most one write per ~64 KiB of lines,
        // and whenever the channel runs empty, so a quiet log is not held back.
        var lines = new ArrayBufferWriter<byte>(BatchBytes + 4096);
        var batched = 0;
        try
        {
            // Not cancelled by stoppingToken: StopAsync completes the channel, and the lines queued so far are
            // written before the task ends.
            while (await reader.WaitToReadAsync(CancellationToken.None))
            {
                while (reader.TryRead(out var entry))
                {
                    AccessLog.Write(lines, entry);
                    lines.Write("\n"u8);
                    batched++;
                    if (lines.WrittenCount >= BatchBytes)
                        batched = await WriteOutAsync(output, lines, batched);
                }
                batched = await WriteOutAsync(output, lines, batched);
                await output.FlushAsync(CancellationToken.None);
            }
        }
        catch (IOException e)
        {
            _logger.LogError(e, "access log: cannot flush {Target}", _target);
        }
    }

    /// <summary>Writes the batched lines out and empties the buffer; returns the lines still batched (none).</summary>
    private async ValueTask<int> WriteOutAsync(Stream output, ArrayBufferWriter<byte> lines, int count)
    {
        try
        {
            await output.WriteAsync(lines.WrittenMemory, CancellationToken.None);
            Interlocked.Add(ref _written, count);
        }
        catch (IOException e)
        {
            _logger.LogError(e, "access log: cannot write {Count} lines to {Target}", count, _target);
        }
        lines.ResetWrittenCount();
        return 0;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel?.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    private Stream Open()
    {
        if (_target is AccessLogTarget.File file)
            return new FileStream(file.path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        return Console.OpenStandardOutput();
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
