module Lb.Rules.Tests.HealthTests
