"""Times to the second wherever Django formats them (the admin's lists): a hundred webhooks in one minute must
not all read "8:14 a.m.". 24-hour clock, as the dashboard's pages show times."""

DATETIME_FORMAT = "N j, Y, H:i:s"
TIME_FORMAT = "H:i:s"
