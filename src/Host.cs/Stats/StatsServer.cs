using System.Net;
using System.Security.Cryptography;
using System.Text;
using Lb.Host.Forwarding;
using Lb.Host.Logging;
using Lb.Rules;

namespace Lb.Host.Stats;

/// <summary>
/// The stats listener (`[stats] listen`, the seed's `listen admin_stats`): its own Kestrel, apart from the
/// proxy's listeners, serving
///   /healthz     the node is alive (the only thing served without credentials),
///   /            the HTML page (Rules' <see cref="StatsPage"/>), reloading itself every `refresh`,
///   /stats.json, /stats.csv, /metrics (Prometheus text),
///   POST /admin  READY / DRAIN / MAINT for one server, from the page's forms.
/// Everything but /healthz needs HTTP Basic credentials. Admin posts must carry the page's anti-CSRF token
/// (random per process) and, when the browser sends them, a same-origin Origin / Referer / Sec-Fetch-Site.
/// </summary>
public sealed class StatsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private StatsServer(WebApplication app) => _app = app;

    public static async Task<StatsServer> StartAsync(StatsConfig config, Func<ForwardingState> state, NodeStatus node,
        AccessLogWriter? accessLog, ILogger logger)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            var endpoint = config.Listen;
            if (endpoint.Host == "*")
                kestrel.ListenAnyIP(endpoint.Port);
            else if (endpoint.Host == "localhost")
                kestrel.ListenLocalhost(endpoint.Port);
            else
                kestrel.Listen(IPAddress.Parse(endpoint.Host), endpoint.Port);
        });
        var app = builder.Build();
        var handlers = new Handlers(config, state, node, new StatsMetrics(state, accessLog, node), new BasicAuth(config), logger);
        app.Use(handlers.GuardAsync);
        app.MapGet("/", handlers.PageAsync);
        app.MapGet("/stats.json", handlers.JsonAsync);
        app.MapGet("/stats.csv", handlers.CsvAsync);
        app.MapGet("/metrics", handlers.MetricsAsync);
        app.MapPost(StatsPage.AdminPath, handlers.AdminAsync);
        await app.StartAsync();
        return new StatsServer(app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class Handlers(StatsConfig config, Func<ForwardingState> state, NodeStatus node, StatsMetrics metrics,
        BasicAuth auth, ILogger logger)
    {
        private const string UserKey = "lb.stats.user";

        // One token per process: the page embeds it, a cross-site form cannot read it (RFC 6454 same-origin policy).
        private readonly string _token = Base64Url(RandomNumberGenerator.GetBytes(32));

        /// <summary>Headers for every answer, then /healthz, then authentication for everything else.</summary>
        public async Task GuardAsync(HttpContext context, RequestDelegate next)
        {
            var headers = context.Response.Headers;
            headers.CacheControl = "no-store";
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "same-origin";
            headers.ContentSecurityPolicy =
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            if (context.Request.Path == "/healthz")
            {
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync($"ok {state().Config.Node.Name}\n");
                return;
            }
            var user = await auth.AuthenticateAsync(context);
            if (user is null)
            {
                await auth.ChallengeAsync(context);
                return;
            }
            context.Items[UserKey] = user;
            await next(context);
        }

        private StatsReport Report() => StatsReports.Build(state(), node, config, DateTimeOffset.UtcNow);

        public Task PageAsync(HttpContext context)
        {
            context.Response.ContentType = "text/html; charset=utf-8";
            return context.Response.WriteAsync(StatsPage.Render(Report(), _token));
        }

        public Task JsonAsync(HttpContext context)
        {
            context.Response.ContentType = "application/json; charset=utf-8";
            return context.Response.WriteAsync(Lb.Rules.Stats.ToJson(Report()));
        }

        public Task CsvAsync(HttpContext context)
        {
            context.Response.ContentType = "text/csv; charset=utf-8; header=present";
            return context.Response.WriteAsync(Lb.Rules.Stats.ToCsv(Report()));
        }

        public Task MetricsAsync(HttpContext context)
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return metrics.WriteAsync(context.Response.Body, context.RequestAborted);
        }

        public async Task AdminAsync(HttpContext context)
        {
            var user = context.Items[UserKey] as string ?? "?";
            var remote = context.Connection.RemoteIpAddress?.ToString() ?? "?";
            if (CrossSite(context.Request) is { } why)
            {
                logger.LogWarning("stats: admin request from {Remote} refused: {Why}", remote, why);
                await Answer(context, StatusCodes.Status403Forbidden, $"refused: {why}");
                return;
            }
            if (!context.Request.HasFormContentType)
            {
                await Answer(context, StatusCodes.Status400BadRequest, "expected a form");
                return;
            }
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            if (!TokenMatches(form[StatsPage.TokenField].ToString()))
            {
                logger.LogWarning("stats: admin request from {Remote} refused: missing or wrong anti-CSRF token", remote);
                await Answer(context, StatusCodes.Status403Forbidden, "refused: missing or wrong token (reload the page)");
                return;
            }
            var appName = form[StatsPage.AppField].ToString();
            var serverName = form[StatsPage.ServerField].ToString();
            var server = state().Apps.FirstOrDefault(a => a.Config.Name == appName)?.Servers.FirstOrDefault(s => s.Name == serverName);
            if (server is null)
            {
                await Answer(context, StatusCodes.Status404NotFound, "no such app or server");
                return;
            }
            var now = DateTimeOffset.UtcNow;
            var parsed = Admin.ParseAction(form[StatsPage.ActionField].ToString(), form[StatsPage.DrainSecondsField].ToString(), now);
            if (parsed.IsError)
            {
                await Answer(context, StatusCodes.Status400BadRequest, parsed.ErrorValue);
                return;
            }
            var before = Admin.Describe(server.Admin);
            server.SetAdmin(parsed.ResultValue, now);
            var after = Admin.Describe(server.Admin);
            logger.LogWarning("stats: {User} from {Remote} set {App}/{Server} to {After} (was {Before})",
                user, remote, appName, serverName, after, before);
            node.RecordAction($"{now.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z {user}@{remote}: {appName}/{serverName} {before} -> {after}");
            // Post/Redirect/Get: a reload of the page does not post again.
            context.Response.StatusCode = StatusCodes.Status303SeeOther;
            context.Response.Headers.Location = "/";
        }

        /// <summary>
        /// Why a state-changing request looks cross-site, or null. Browsers send Sec-Fetch-Site (Fetch Metadata)
        /// and Origin on form posts (RFC 6454 §7); a Referer is checked when there is no Origin. A client that
        /// sends none of them (curl) must still present the token.
        /// </summary>
        private static string? CrossSite(HttpRequest request)
        {
            var self = $"{request.Scheme}://{request.Host}";
            var site = request.Headers["Sec-Fetch-Site"].ToString();
            if (site.Length > 0 && site != "same-origin" && site != "none")
                return $"Sec-Fetch-Site is {site}";
            var origin = request.Headers.Origin.ToString();
            if (origin.Length > 0)
                return string.Equals(origin, self, StringComparison.OrdinalIgnoreCase) ? null : $"Origin {origin} is not {self}";
            var referer = request.Headers.Referer.ToString();
            if (referer.Length > 0 && !(referer.StartsWith(self + "/", StringComparison.OrdinalIgnoreCase) || string.Equals(referer, self, StringComparison.OrdinalIgnoreCase)))
                return "Referer is another site";
            return null;
        }

        private bool TokenMatches(string token) =>
            CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(token), Encoding.ASCII.GetBytes(_token));

        private static Task Answer(HttpContext context, int status, string text)
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync(text + "\n");
        }

        private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
