using Lb.Host.Configuration;
using Lb.Host.Demo;
using Lb.Host.Forwarding;
using Lb.Host.Serving;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// A file lb cannot watch (its folder is gone or unreadable, or inotify's limit is reached) must not stop lb
/// from starting or a reload from finishing: before, the watcher's exception escaped Start (lb refused to
/// start) or a timer callback (the process ended).
/// </summary>
public sealed class ReloadWatchTests
{
    [Fact]
    public void A_certificate_folder_that_cannot_be_watched_is_logged_and_lb_keeps_its_reload()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"lb-watch-{Guid.NewGuid():N}");
        var certificates = Path.Combine(folder, "certs");
        Directory.CreateDirectory(certificates);
        try
        {
            SelfSignedCertificate.Write(certificates, "lb");
            var configPath = Path.Combine(folder, "lb.toml");
            File.WriteAllText(configPath, "[listen]\nhttps = \"127.0.0.1:0\"\n[tls]\ncert = \"certs/lb.crt\"\nkey = \"certs/lb.key\"\n"
                + "[apps.one]\nservers = [{ name = \"one_1\", address = \"127.0.0.1:9\" }]\n");
            var load = ConfigFile.Load(configPath);
            Assert.True(load.IsValid);
            Directory.Delete(certificates, recursive: true);
            var log = new LinesLogger();
            using var reloader = new Reloader(configPath, new ForwardingState(load.Config), null, log);

            reloader.Start();

            Assert.Contains(log.Lines, l => l.Contains("not watching") && l.Contains("lb.crt"));
            // The config now names missing files: refused with its errors, not thrown.
            Assert.False(reloader.Reload("test"));
            Assert.StartsWith("refused (test)", reloader.LastOutcome);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Keeps what was logged, to read the warning back.</summary>
    private sealed class LinesLogger : ILogger
    {
        public List<string> Lines { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
                Lines.Add(formatter(state, exception));
        }
    }
}
