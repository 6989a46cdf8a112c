-- What the notification that first brought an alert said about itself: why Alertmanager sent it
-- (notification_reason, Alertmanager 0.32 and later: "first notification", "new alerts added",
-- "repeat interval elapsed", ...) and the labels of the route it came through (routeLabels,
-- 0.34 and later). Empty for older releases. A first reason of "repeat interval elapsed" says
-- vectorheal missed the notifications before it.
ALTER TABLE alerts
    ADD COLUMN notification_reason text  NOT NULL DEFAULT '',
    ADD COLUMN route_labels        jsonb NOT NULL DEFAULT '{}';
